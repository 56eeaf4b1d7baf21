// Sorting and filtering for report.html; no network, no eval, no innerHTML:
// cells are only read (textContent) and rows only reordered or hidden.
(function () {
  "use strict";
  var filter = document.getElementById("filter");
  var onlyUnexpected = document.getElementById("only-unexpected");
  var filterables = Array.prototype.slice.call(document.querySelectorAll("table.filterable"));

  function cellKey(cell) {
    var raw = cell.getAttribute("data-sort");
    var text = raw === null ? cell.textContent : raw;
    var num = Number(text);
    return text !== "" && !isNaN(num) ? {n: num} : {s: text.toLowerCase()};
  }

  function compare(a, b) {
    if (a.n !== undefined && b.n !== undefined) { return a.n - b.n; }
    if (a.n !== undefined) { return -1; }
    if (b.n !== undefined) { return 1; }
    return a.s < b.s ? -1 : (a.s > b.s ? 1 : 0);
  }

  function sortTable(table, col, descending) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    // stable: ties keep the report's host-then-port order
    rows.forEach(function (r, i) { r.setAttribute("data-order", String(i)); });
    rows.sort(function (x, y) {
      var c = compare(cellKey(x.cells[col]), cellKey(y.cells[col]));
      if (descending) { c = -c; }
      return c || Number(x.getAttribute("data-order")) - Number(y.getAttribute("data-order"));
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.setAttribute("aria-sort", i === col ? (descending ? "descending" : "ascending") : "none");
    });
    table.setAttribute("data-sorted", col + (descending ? ":desc" : ":asc"));
  }

  function applyFilter() {
    var q = filter.value.toLowerCase();
    var only = onlyUnexpected.checked;
    filterables.forEach(function (table) {
      var rows = table.tBodies[0].rows;
      var shown = 0;
      Array.prototype.forEach.call(rows, function (r) {
        var ok = (!q || r.textContent.toLowerCase().indexOf(q) >= 0) &&
                 (!only || r.classList.contains("unexpected"));
        r.hidden = !ok;
        if (ok) { shown += 1; }
      });
      var counter = document.getElementById(table.id + "-shown");
      if (counter) {
        counter.textContent = "Showing " + shown + " of " + rows.length + " " + table.getAttribute("data-noun");
      }
    });
  }

  // View state lives in the URL fragment (#q=nc&unexpected=1&sort=binds:8:desc) so a
  // filtered view can be linked to, and opened directly by a headless browser.
  function saveState() {
    var params = new URLSearchParams();
    if (filter.value) { params.set("q", filter.value); }
    if (onlyUnexpected.checked) { params.set("unexpected", "1"); }
    var sorted = document.querySelector("table[data-sorted]");
    if (sorted) { params.set("sort", sorted.id + ":" + sorted.getAttribute("data-sorted")); }
    history.replaceState(null, "", "#" + params.toString());
  }

  function loadState() {
    var params = new URLSearchParams(location.hash.slice(1));
    filter.value = params.get("q") || "";
    onlyUnexpected.checked = params.get("unexpected") === "1";
    var sort = (params.get("sort") || "").split(":");
    var table = sort[0] ? document.getElementById(sort[0]) : null;
    if (table && table.classList.contains("sortable") && /^\d+$/.test(sort[1] || "")) {
      sortTable(table, Number(sort[1]), sort[2] === "desc");
    }
  }

  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = th.textContent;
      button.title = "sort by " + th.textContent;
      th.textContent = "";
      th.appendChild(button);
      th.setAttribute("aria-sort", "none");
      button.addEventListener("click", function () {
        sortTable(table, i, th.getAttribute("aria-sort") === "ascending");
        saveState();
      });
    });
  });

  filter.addEventListener("input", function () { applyFilter(); saveState(); });
  onlyUnexpected.addEventListener("change", function () { applyFilter(); saveState(); });
  loadState();
  applyFilter();
  document.body.setAttribute("data-js", "ready");
}());
