// Search by photo: pick or drop a photo, crop it with Cropper.js, post it to the API, draw the results.
(() => {
  "use strict";
  const form = document.getElementById("photo-search");
  if (!form) return;
  const $ = (id) => document.getElementById(id);
  const fileInput = $("ps-file"), drop = $("drop-zone"), stage = $("crop-stage"), image = $("crop-image");
  const hint = $("crop-hint"), submit = $("ps-submit"), status = $("ps-status"), results = $("ps-results");
  const queryBox = $("ps-query"), cutout = $("ps-cutout"), queryText = $("ps-query-text"), facetsBox = $("ps-facets");
  const maxBytes = Number(form.dataset.maxMb) * 1024 * 1024;
  // Photos larger than this on the long side are shrunk in the browser before upload (phone photos).
  const UPLOAD_LONG_SIDE = 2048;
  const TYPES = ["image/jpeg", "image/png", "image/webp"];
  let cropper = null, file = null, objectUrl = null, busy = false;

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
  }

  function load(chosen) {
    if (!chosen) return;
    if (chosen.type && !TYPES.includes(chosen.type)) {
      say(`“${chosen.name}” is not a JPEG, PNG or WebP image.`, true);
      return;
    }
    file = chosen;
    if (cropper) cropper.destroy();
    if (objectUrl) URL.revokeObjectURL(objectUrl);
    objectUrl = URL.createObjectURL(chosen);
    image.onload = () => {
      cropper = new Cropper(image, {
        viewMode: 1, autoCropArea: 1, responsive: true, background: false, zoomable: false,
        // The browser already shows the photo upright (EXIF); the server uprights it the same way.
        checkOrientation: false,
      });
      submit.disabled = false;
      say("Drag the box around the garment, then search.");
    };
    image.onerror = () => say("This file cannot be shown as an image.", true);
    image.src = objectUrl;
    stage.hidden = false;
    hint.hidden = false;
    drop.classList.add("compact");
  }

  // The crop in pixels of the upright photo, or null for (nearly) the whole photo.
  function cropBox() {
    if (!cropper) return null;
    const d = cropper.getData(true), w = image.naturalWidth, h = image.naturalHeight;
    const x = Math.max(0, d.x), y = Math.max(0, d.y);
    const box = [x, y, Math.min(d.width, w - x), Math.min(d.height, h - y)];
    if (box[2] * box[3] >= 0.98 * w * h) return null;
    return box;
  }

  // A large photo is re-encoded at UPLOAD_LONG_SIDE, and the crop scaled with it.
  async function uploadable(box) {
    const w = image.naturalWidth, h = image.naturalHeight, scale = UPLOAD_LONG_SIDE / Math.max(w, h);
    if (scale >= 1 && file.size <= maxBytes) return { blob: file, name: file.name, box };
    const s = Math.min(1, scale);
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(w * s);
    canvas.height = Math.round(h * s);
    canvas.getContext("2d").drawImage(image, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
    const scaled = box && box.map((v) => Math.floor(v * s));
    if (scaled) {
      scaled[2] = Math.max(1, Math.min(scaled[2], canvas.width - scaled[0]));
      scaled[3] = Math.max(1, Math.min(scaled[3], canvas.height - scaled[1]));
    }
    return { blob, name: "photo.jpg", box: scaled };
  }

  function tag(text, cls) {
    const span = document.createElement("span");
    span.className = cls ? `tag ${cls}` : "tag";
    span.textContent = text;
    return span;
  }

  function card(match) {
    const item = match.item, cover = item.images && item.images[0];
    const fig = document.createElement("figure");
    fig.className = "card";
    const link = document.createElement("a");
    link.href = item.url;
    if (cover && cover.thumbnail) {
      const img = document.createElement("img");
      img.src = cover.thumbnail; img.alt = item.title; img.loading = "lazy"; img.width = 320; img.height = 320;
      link.appendChild(img);
    } else {
      const none = document.createElement("div");
      none.className = "noimg"; none.textContent = "no image";
      link.appendChild(none);
    }
    fig.appendChild(link);
    const cap = document.createElement("figcaption");
    const title = document.createElement("a");
    title.href = item.url;
    title.textContent = item.title.length > 40 ? `${item.title.slice(0, 39)}…` : item.title;
    const tags = document.createElement("span");
    tags.className = "tags";
    if (item.label) tags.appendChild(tag(item.label));
    if (item.gender) tags.appendChild(tag({ W: "Women", M: "Men", U: "Unisex" }[item.gender] || item.gender, "muted"));
    tags.appendChild(tag(match.score.toFixed(2), "score"));
    cap.append(title, tags);
    fig.appendChild(cap);
    return fig;
  }

  function showFacets(facets) {
    facetsBox.replaceChildren();
    for (const [field, rows] of Object.entries(facets)) {
      for (const row of rows) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "facet";
        const shown = field === "gender" ? ({ W: "Women", M: "Men", U: "Unisex" }[row.value] || row.value) : row.value;
        button.textContent = `${shown} · ${row.count}`;
        button.title = `Only ${field} ${shown}`;
        button.addEventListener("click", () => {
          const select = form.elements[field];
          if (![...select.options].some((o) => o.value === row.value)) select.add(new Option(row.value, row.value));
          select.value = row.value;
          form.requestSubmit();
        });
        facetsBox.appendChild(button);
      }
    }
  }

  async function search(event) {
    event.preventDefault();
    if (!file || busy) return;
    busy = true;
    submit.disabled = true;
    say("Searching…");
    const started = performance.now();
    try {
      const upload = await uploadable(cropBox());
      const data = new FormData();
      data.append("image", upload.blob, upload.name);
      if (upload.box) data.append("crop", upload.box.join(","));
      for (const name of ["collection", "label", "gender", "split", "k"]) {
        if (form.elements[name].value) data.append(name, form.elements[name].value);
      }
      const response = await fetch(form.dataset.api, {
        method: "POST", body: data, credentials: "same-origin",
        headers: { "X-CSRFToken": form.elements.csrfmiddlewaretoken.value, Accept: "application/json" },
      });
      const body = await response.json().catch(() => ({}));
      if (!response.ok) {
        const wait = response.headers.get("Retry-After");
        say((body.detail || `The search failed (HTTP ${response.status}).`) + (wait ? ` Try again in ${wait} s.` : ""), true);
        return;
      }
      results.replaceChildren(...body.results.map(card));
      cutout.src = body.query.cutout;
      queryText.textContent = `${body.query.background_removed ? "Background removed" : "Whole image"}`
        + `${body.query.crop ? ", cropped" : ""} · ${body.query.model}`
        + (body.query.looks_like ? ` · looks like: ${body.query.looks_like.label} `
           + `${Math.round(100 * body.query.looks_like.probability)}%` : "");
      showFacets(body.facets);
      queryBox.hidden = false;
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      say(body.results.length ? `${body.results.length} closest items (${seconds} s).` : "No items match these filters.");
    } catch (error) {
      say(`The search could not be sent: ${error.message}`, true);
    } finally {
      busy = false;
      submit.disabled = !file;
    }
  }

  fileInput.addEventListener("change", () => load(fileInput.files[0]));
  ["dragenter", "dragover"].forEach((type) => drop.addEventListener(type, (e) => {
    e.preventDefault();
    drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((type) => drop.addEventListener(type, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    load(e.dataTransfer.files[0]);
  });
  $("ps-whole").addEventListener("click", () => cropper && cropper.setData({
    x: 0, y: 0, width: image.naturalWidth, height: image.naturalHeight,
  }));
  $("ps-other").addEventListener("click", () => fileInput.click());
  $("ps-collection").addEventListener("change", (e) => {
    // Labels differ per collection: reload the page's filter lists for the chosen one.
    if (!file) window.location.search = `?collection=${encodeURIComponent(e.target.value)}`;
  });
  form.addEventListener("submit", search);
})();
