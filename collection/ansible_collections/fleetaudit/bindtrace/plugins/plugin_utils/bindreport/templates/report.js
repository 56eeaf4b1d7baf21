// Sorting, filtering and lazy host details for report.html; no network, no
// eval, no innerHTML: cells are only read (textContent), rows reordered or
// hidden, and lazy details built with createElement + textContent.
(function () {
  "use strict";
  var started = performance.now();
  var filter = document.getElementById("filter");
  var onlyUnexpected = document.getElementById("only-unexpected");
  var binds = document.getElementById("binds");
  var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };

  function cellKey(cell) {
    var raw = cell ? cell.getAttribute("data-sort") : "";
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

  // a column by its index or by its key (data-key on the header: port, comm...)
  function columnIndex(table, col) {
    if (/^\d+$/.test(col)) { return Number(col); }
    var found = -1;
    each(table.tHead.rows[0].cells, function (th, i) { if (th.getAttribute("data-key") === col) { found = i; } });
    return found;
  }

  function sortTable(table, col, descending) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    // stable: ties keep the report's order (host, then port)
    rows.forEach(function (r, i) { if (!r.hasAttribute("data-order")) { r.setAttribute("data-order", String(i)); } });
    var keys = rows.map(function (r) { return cellKey(r.cells[col]); });
    var order = rows.map(function (r, i) { return i; });
    order.sort(function (x, y) {
      var c = compare(keys[x], keys[y]);
      if (descending) { c = -c; }
      return c || Number(rows[x].getAttribute("data-order")) - Number(rows[y].getAttribute("data-order"));
    });
    var frag = document.createDocumentFragment();
    order.forEach(function (i) { frag.appendChild(rows[i]); });
    body.appendChild(frag);
    each(table.tHead.rows[0].cells, function (th, i) {
      th.setAttribute("aria-sort", i === col ? (descending ? "descending" : "ascending") : "none");
    });
    var key = table.tHead.rows[0].cells[col].getAttribute("data-key");
    table.setAttribute("data-sorted", (key || col) + (descending ? ":desc" : ":asc"));
  }

  function showCount(table, shown, total) {
    var counter = document.getElementById(table.id + "-shown");
    if (counter) {
      counter.textContent = "Showing " + shown + " of " + total + " " + table.getAttribute("data-noun");
    }
  }

  function filterRows(table, q, only) {
    var rows = table.tBodies[0].rows;
    var shown = 0;
    q = q.toLowerCase();
    each(rows, function (r) {
      var ok = (!q || r.textContent.toLowerCase().indexOf(q) >= 0) && (!only || r.classList.contains("unexpected"));
      r.hidden = !ok;
      if (ok) { shown += 1; }
    });
    showCount(table, shown, rows.length);
  }

  function applyBindFilter() {
    if (binds) { filterRows(binds, filter.value, onlyUnexpected.checked); }
  }

  // every other table gets its own filter box, above it
  var boxes = {};
  each(document.querySelectorAll("table.filterable"), function (table) {
    var wrap = document.createElement("div");
    wrap.className = "controls";
    var label = document.createElement("label");
    label.textContent = "Filter ";
    var input = document.createElement("input");
    input.type = "search";
    input.className = "table-filter";
    input.setAttribute("data-table", table.id);
    input.setAttribute("aria-label", "filter " + table.getAttribute("data-noun"));
    label.appendChild(input);
    var counter = document.createElement("span");
    counter.id = table.id + "-shown";
    wrap.appendChild(label);
    wrap.appendChild(counter);
    var anchor = table.parentNode.classList.contains("scroll") ? table.parentNode : table;
    anchor.parentNode.insertBefore(wrap, anchor);
    input.addEventListener("input", function () { filterRows(table, input.value, false); saveState(); });
    boxes[table.id] = input;
  });

  // View state lives in the URL fragment, so a view can be linked to and opened directly:
  // #q=nc&unexpected=1&sort=binds:port:desc (the binds table), f.host-table=web (another
  // table's filter), sort=host-table:3:desc (a column by index or key), host=12 (a host's details).
  function saveState() {
    var params = new URLSearchParams();
    if (filter && filter.value) { params.set("q", filter.value); }
    if (onlyUnexpected && onlyUnexpected.checked) { params.set("unexpected", "1"); }
    Object.keys(boxes).forEach(function (id) { if (boxes[id].value) { params.set("f." + id, boxes[id].value); } });
    var sorted = document.querySelector("table[data-sorted]");
    if (sorted) { params.set("sort", sorted.id + ":" + sorted.getAttribute("data-sorted")); }
    var lazy = document.getElementById("lazy-host");
    if (lazy && !lazy.hidden) { params.set("host", lazy.getAttribute("data-index")); }
    history.replaceState(null, "", "#" + params.toString());
  }

  function loadState() {
    var params = new URLSearchParams(location.hash.slice(1));
    if (filter) { filter.value = params.get("q") || ""; }
    if (onlyUnexpected) { onlyUnexpected.checked = params.get("unexpected") === "1"; }
    Object.keys(boxes).forEach(function (id) {
      boxes[id].value = params.get("f." + id) || "";
      filterRows(document.getElementById(id), boxes[id].value, false);
    });
    var sort = (params.get("sort") || "").split(":");
    var table = sort[0] ? document.getElementById(sort[0]) : null;
    if (table && table.classList.contains("sortable") && sort[1]) {
      var col = columnIndex(table, sort[1]);
      if (col >= 0 && col < table.tHead.rows[0].cells.length) { sortTable(table, col, sort[2] === "desc"); }
    }
    if (params.get("host")) { showHost(Number(params.get("host"))); }
  }

  each(document.querySelectorAll("table.sortable"), function (table) {
    each(table.tHead.rows[0].cells, function (th, i) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = th.textContent;
      button.title = "sort by " + th.textContent;
      while (th.firstChild) { th.removeChild(th.firstChild); }
      th.appendChild(button);
      th.setAttribute("aria-sort", "none");
      button.addEventListener("click", function () {
        sortTable(table, i, th.getAttribute("aria-sort") === "ascending");
        saveState();
      });
    });
  });

  // Big fleets: details of hosts without findings come from the embedded data
  // (listeners per host), built on demand.
  var data = null;
  var dataNode = document.getElementById("host-data");
  function hostData() {
    if (data === null && dataNode) { data = JSON.parse(dataNode.textContent); }
    return data;
  }

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }

  function showHost(index) {
    var lazy = document.getElementById("lazy-host");
    var d = hostData();
    if (!lazy || !d || document.getElementById("host-" + index)) { return false; }
    var host = d.hosts[index - 1];
    if (!host) { return false; }
    while (lazy.firstChild) { lazy.removeChild(lazy.firstChild); }
    var title = el("h3", host[0] + " ");
    title.appendChild(el("span", host[1], "badge"));
    lazy.appendChild(title);
    lazy.appendChild(el("h4", "Listeners (" + host[2].length + ")"));
    var table = el("table");
    table.id = "lazy-listeners";
    var head = table.createTHead().insertRow();
    d.cols.forEach(function (c) { head.appendChild(el("th", c)); });
    var body = table.createTBody();
    host[2].forEach(function (row) {
      var tr = body.insertRow();
      var cells = row.map(function (v, i) { return d.text[i] && v !== null ? d.strings[v] : v; });
      if (cells[cells.length - 1] === "unexpected") { tr.className = "unexpected"; }
      cells.forEach(function (v) { tr.appendChild(el("td", v === null ? "" : v)); });
    });
    lazy.appendChild(table);
    lazy.setAttribute("data-index", String(index));
    lazy.hidden = false;
    lazy.scrollIntoView();
    return true;
  }

  each(document.querySelectorAll("a[data-host]"), function (a) {
    a.addEventListener("click", function (ev) {
      if (showHost(Number(a.getAttribute("data-host")))) { ev.preventDefault(); saveState(); }
    });
  });

  if (filter) {
    filter.addEventListener("input", function () { applyBindFilter(); saveState(); });
    onlyUnexpected.addEventListener("change", function () { applyBindFilter(); saveState(); });
  }
  loadState();
  applyBindFilter();
  // measured by the page itself, for the report's tests and benchmarks
  document.body.setAttribute("data-page-width", String(document.documentElement.scrollWidth));
  document.body.setAttribute("data-ready-ms", String(Math.round(performance.now() - started)));
  document.body.setAttribute("data-js", "ready");
}());
