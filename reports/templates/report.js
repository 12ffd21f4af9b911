// Sorting, filtering and expanding the discrepancy table.  Each entry is a <tbody> holding its row and
// its (hidden) detail row, so sorting moves both together.
(function () {
  "use strict";
  var table = document.getElementById("discrepancies");
  if (!table) { return; }
  var bodies = Array.prototype.slice.call(table.tBodies);
  var textFilter = document.getElementById("filter-text");
  var verdictFilter = document.getElementById("filter-verdict");
  var oracleFilter = document.getElementById("filter-oracle");
  var shown = document.getElementById("shown-count");

  function toggle(row) {
    var detail = row.nextElementSibling;
    var open = row.getAttribute("aria-expanded") === "true";
    row.setAttribute("aria-expanded", open ? "false" : "true");
    detail.hidden = open;
  }

  bodies.forEach(function (body) {
    var row = body.rows[0];
    row.addEventListener("click", function () { toggle(row); });
    row.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); toggle(row); }
    });
  });

  function applyFilters() {
    var needle = (textFilter.value || "").toLowerCase();
    var verdict = verdictFilter.value;
    var oracle = oracleFilter.value;
    var count = 0;
    bodies.forEach(function (body) {
      var visible = (!verdict || body.dataset.verdict === verdict) &&
        (!oracle || body.dataset.oracle === oracle) &&
        (!needle || body.rows[0].textContent.toLowerCase().indexOf(needle) !== -1);
      body.hidden = !visible;
      if (visible) { count += 1; }
    });
    shown.textContent = String(count);
  }
  [textFilter, verdictFilter, oracleFilter].forEach(function (control) {
    control.addEventListener("input", applyFilters);
    control.addEventListener("change", applyFilters);
  });

  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  headers.forEach(function (header) {
    var key = header.dataset.key;
    if (!key) { return; }
    header.addEventListener("click", function () {
      var descending = !header.classList.contains("desc");
      headers.forEach(function (h) { h.classList.remove("asc", "desc"); });
      header.classList.add(descending ? "desc" : "asc");
      var numeric = header.dataset.type === "number";
      bodies.sort(function (a, b) {
        var x = a.dataset[key], y = b.dataset[key], order;
        if (numeric) {
          x = x === "" ? -Infinity : parseFloat(x);
          y = y === "" ? -Infinity : parseFloat(y);
          order = x < y ? -1 : (x > y ? 1 : 0);
        } else {
          order = x.localeCompare(y);
        }
        return descending ? -order : order;
      });
      bodies.forEach(function (body) { table.appendChild(body); });
    });
  });
  applyFilters();
})();
