// Like/dislike buttons: PUT /api/votes/<id>/ to vote, DELETE to undo (pressing the pressed
// button again). No page reload; the CSRF token travels in the X-CSRFToken header.
(function () {
  "use strict";
  function cookie(name) {
    var m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : "";
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest(".vote button[data-value]");
    if (!button) return;
    var box = button.closest(".vote");
    var undo = button.getAttribute("aria-pressed") === "true";
    var status = box.querySelector(".vote-status");
    var buttons = box.querySelectorAll("button[data-value]");
    buttons.forEach(function (b) { b.disabled = true; });
    fetch(box.dataset.url, {
      method: undo ? "DELETE" : "PUT",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "Accept": "application/json",
                "X-CSRFToken": box.dataset.csrf || cookie("csrftoken")},
      body: undo ? null : JSON.stringify({value: button.dataset.value}),
    }).then(function (response) {
      if (!response.ok && response.status !== 404) {
        return response.json().catch(function () { return {}; }).then(function (body) {
          throw new Error(body.detail || ("Error " + response.status));
        });
      }
      buttons.forEach(function (b) {
        b.setAttribute("aria-pressed", String(!undo && b === button));
      });
      if (status) status.textContent = undo ? "Vote removed" : "Saved";
      box.dispatchEvent(new CustomEvent("vote:changed", {bubbles: true,
        detail: {value: undo ? null : button.dataset.value}}));
    }).catch(function (error) {
      if (status) status.textContent = error.message;
    }).finally(function () {
      buttons.forEach(function (b) { b.disabled = false; });
      if (status) setTimeout(function () { status.textContent = ""; }, 2500);
    });
  });
})();
