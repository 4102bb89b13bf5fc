/* A segment's size over time (Chart.js, vendored): drawn from the page's JSON data,
   with no inline script (the console's Content-Security-Policy allows none). */
(function () {
  "use strict";
  function draw() {
    var canvas = document.getElementById("size-chart");
    var data = document.getElementById("size-history");
    if (!canvas || !data || typeof Chart === "undefined") { return; }
    var points = JSON.parse(data.textContent);
    canvas.chart = new Chart(canvas, {
      type: "line",
      data: {
        labels: points.map(function (p) { return p.day; }),
        datasets: [{
          label: "buyers",
          data: points.map(function (p) { return p.size; }),
          borderColor: "#2457c5",
          backgroundColor: "rgba(36, 87, 197, 0.12)",
          fill: true,
          tension: 0.2,
          pointRadius: 2
        }]
      },
      options: {
        animation: false,
        maintainAspectRatio: false,
        plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true, ticks: { precision: 0 } } }
      }
    });
  }
  document.addEventListener("DOMContentLoaded", draw);
})();
