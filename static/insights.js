// Draws /insights/'s charts with Chart.js from the numbers the page's tables show
// (the JSON beside them); without JavaScript the tables are all there is.
"use strict";

const PALETTE = ["#0b5cad", "#116329", "#a40e26", "#8250df", "#bc4c00", "#1b7c83", "#57606a"];

function drawChart(canvas, spec) {
  const stacked = spec.type === "stacked";
  return new Chart(canvas, {
    type: spec.type === "line" ? "line" : "bar",
    data: {
      labels: spec.labels,
      datasets: spec.series.map((series, n) => ({
        label: series.name,
        data: series.values,
        borderColor: PALETTE[n % PALETTE.length],
        backgroundColor: PALETTE[n % PALETTE.length],
      })),
    },
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: { x: { stacked }, y: { stacked, beginAtZero: true } },
    },
  });
}

document.addEventListener("DOMContentLoaded", () => {
  const source = document.getElementById("insights-charts");
  if (!source || typeof Chart === "undefined") return;
  const charts = JSON.parse(source.textContent);
  document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    drawChart(canvas, charts[canvas.dataset.chart]);
  });
});
