/* The style map (Chart.js scatter), the silhouette and elbow charts, and job progress polling. */
(function () {
  "use strict";
  const script = document.currentScript;
  const PALETTE = ["#4263eb", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0c8599", "#f08c00", "#5c940d",
    "#d6336c", "#1098ad", "#ae3ec9", "#e03131", "#364fc7", "#66a80f", "#f76707", "#862e9c", "#0b7285",
    "#a61e4d", "#5f3dc4", "#2f9e44", "#1864ab", "#d9480f", "#495057", "#9c36b5", "#087f5b", "#e67700",
    "#3b5bdb", "#c92a2a", "#099268", "#7950f2"];
  const colour = (i) => PALETTE[i % PALETTE.length];

  document.querySelectorAll(".swatch[data-cluster]").forEach((el) => {
    el.style.background = colour(Number(el.dataset.cluster));
  });

  // --- job progress ---------------------------------------------------------------------------
  document.querySelectorAll(".job[data-active='1']").forEach((box) => {
    const url = script.dataset.jobUrl.replace(/0\/$/, box.dataset.job + "/");
    const poll = () => fetch(url, {headers: {Accept: "application/json"}}).then((r) => r.json()).then((job) => {
      box.querySelector("progress").value = job.progress;
      box.querySelector(".job-status").textContent = job.status;
      box.querySelector(".job-message").textContent = job.status === "failed" ? job.error : job.message;
      if (job.status === "done" || job.status === "failed") { window.location.reload(); } else { setTimeout(poll, 1500); }
    }).catch(() => setTimeout(poll, 5000));
    setTimeout(poll, 1000);
  });

  if (!window.Chart || !document.getElementById("style-map")) { return; }

  // --- curves -----------------------------------------------------------------------------------
  const curves = JSON.parse(document.getElementById("style-curves").textContent);
  // Cluster names by index (automatic from the members' labels until a curator renames one).
  const names = JSON.parse(document.getElementById("cluster-names").textContent);
  const clusterName = (index) => names[index] || "cluster " + index;
  const chosen = Number(script.dataset.chosenK);
  const lineChart = (id, key, label) => new Chart(document.getElementById(id), {
    type: "line",
    data: {labels: curves.map((c) => c.k), datasets: [{
      label, data: curves.map((c) => c[key]), borderColor: "#3b5bdb", backgroundColor: "#3b5bdb",
      pointRadius: curves.map((c) => (c.k === chosen ? 6 : 2)),
      pointBackgroundColor: curves.map((c) => (c.k === chosen ? "#e8590c" : "#3b5bdb")), tension: 0.15,
    }]},
    options: {maintainAspectRatio: false, animation: false, plugins: {legend: {display: false}},
      scales: {x: {title: {display: true, text: "k"}}, y: {title: {display: true, text: label}}}},
  });
  lineChart("silhouette-chart", "silhouette", "silhouette");
  lineChart("elbow-chart", "inertia", "inertia");

  // --- the map ----------------------------------------------------------------------------------
  const canvas = document.getElementById("style-map");
  const tip = document.getElementById("map-tip");
  const colourBy = document.getElementById("colour-by");
  const showVotes = document.getElementById("show-votes");
  let points = [];
  let chart = null;

  function datasets() {
    const byKey = new Map();
    const key = colourBy.value;
    for (const p of points) {
      const k = key === "cluster" ? p.cluster : (p.label || "(none)");
      if (!byKey.has(k)) { byKey.set(k, []); }
      byKey.get(k).push(p);
    }
    const keys = [...byKey.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const sets = keys.map((k, i) => ({
      label: key === "cluster" ? clusterName(k) : k,
      data: byKey.get(k), pointRadius: 3, pointHoverRadius: 6,
      backgroundColor: colour(key === "cluster" ? Number(k) : i) + "cc", borderWidth: 0,
    }));
    if (showVotes && showVotes.checked) {
      for (const [value, name, c] of [["like", "my likes", "#2b8a3e"], ["dislike", "my dislikes", "#c92a2a"]]) {
        const data = points.filter((p) => p.vote === value);
        if (data.length) {
          sets.push({label: name, data, pointRadius: 7, pointStyle: value === "like" ? "circle" : "crossRot",
            backgroundColor: "transparent", borderColor: c, borderWidth: 2});
        }
      }
    }
    return sets;
  }

  function externalTooltip(context) {
    const model = context.tooltip;
    if (model.opacity === 0 || !model.dataPoints || !model.dataPoints.length) { tip.hidden = true; return; }
    const p = model.dataPoints[0].raw;
    tip.replaceChildren();
    if (p.thumb) { const img = document.createElement("img"); img.src = p.thumb; img.alt = ""; tip.append(img); }
    const caption = document.createElement("div");
    caption.textContent = p.title + (p.label ? " · " + p.label : "") + " · in " + clusterName(p.cluster);
    tip.append(caption);
    tip.hidden = false;
    const panel = canvas.closest(".map-panel");
    const x = canvas.offsetLeft + model.caretX + 12;
    tip.style.left = Math.min(x, panel.clientWidth - 160) + "px";
    tip.style.top = (canvas.offsetTop + model.caretY + 12) + "px";
  }

  function draw() {
    if (chart) { chart.destroy(); }
    chart = new Chart(canvas, {
      type: "scatter",
      data: {datasets: datasets()},
      options: {
        maintainAspectRatio: false, animation: false, parsing: false,
        scales: {x: {display: false, min: -0.02, max: 1.02}, y: {display: false, min: -0.02, max: 1.02}},
        plugins: {legend: {position: "bottom", labels: {boxWidth: 10, font: {size: 11}}},
          tooltip: {enabled: false, external: externalTooltip}},
        onClick: (_event, elements) => {
          if (elements.length) { window.location.href = chart.data.datasets[elements[0].datasetIndex].data[elements[0].index].url; }
        },
        onHover: (event, elements) => { event.native.target.style.cursor = elements.length ? "pointer" : "default"; },
      },
    });
  }

  fetch(script.dataset.mapUrl, {headers: {Accept: "application/json"}, credentials: "same-origin"})
    .then((r) => r.json()).then((body) => { points = body.points; draw(); });
  colourBy.addEventListener("change", draw);
  if (showVotes) { showVotes.addEventListener("change", draw); }
})();
