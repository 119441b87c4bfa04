// Overview charts (templates/console/overview.html). Data comes from the json_script element
// #overview-charts-data (CSP: no inline script); Chart.js is the vendored UMD build. Every
// chart's numbers are also in a table beside it, so nothing here is the only way to read them.
// htmx swaps #overview-live every minute: the charts are drawn again from the new data.
(function () {
  "use strict";
  var charts = [];
  function draw() {
    charts.forEach(function (c) { c.destroy(); });
    charts = [];
    var source = document.getElementById("overview-charts-data");
    if (!source || typeof window.Chart === "undefined") return;
    var data = JSON.parse(source.textContent);
    // Colour is never the only signal: each series is named in the legend and in the table.
    var colours = {
      succeeded: "#17803d", failed: "#b42318", in_progress: "#b54708",
      awaiting_approval: "#6941c6", cancelled: "#8590a2"
    };
    var perHour = document.getElementById("chart-per-hour");
    if (perHour) {
      charts.push(new window.Chart(perHour, {
        type: "bar",
        data: {
          labels: data.perHour.labels,
          datasets: data.perHour.series.map(function (s) {
            return { label: s.label, data: s.data, backgroundColor: colours[s.key] || "#1f5fbf", stack: "all" };
          })
        },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
          plugins: { legend: { position: "bottom" } }
        }
      }));
    }
    var causes = document.getElementById("chart-causes");
    if (causes && data.causes.data.length) {
      charts.push(new window.Chart(causes, {
        type: "bar",
        data: { labels: data.causes.labels, datasets: [{ label: "Failed commands", data: data.causes.data, backgroundColor: "#b42318" }] },
        options: {
          indexAxis: "y", responsive: true, maintainAspectRatio: false, animation: false,
          scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
          plugins: { legend: { display: false } }
        }
      }));
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
  // htmx:load fires on each element htmx puts in the page (the new #overview-live after a swap).
  document.addEventListener("htmx:load", function (e) {
    var el = e.target;
    if (el && el.id === "overview-live") draw();
  });
})();
