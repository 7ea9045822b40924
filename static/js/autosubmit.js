// Submits a filter form when one of its <select data-autosubmit> changes (no inline handlers: CSP).
document.addEventListener("change", (event) => {
  const field = event.target;
  if (field instanceof HTMLSelectElement && field.hasAttribute("data-autosubmit") && field.form) {
    field.form.submit();
  }
});
