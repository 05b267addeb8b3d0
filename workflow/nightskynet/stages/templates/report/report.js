// Tables of class "sortable" sort by a column when its header is clicked.
document.querySelectorAll('table.sortable th').forEach(function (th) {
  var col = th.cellIndex;
  th.style.cursor = 'pointer';
  th.title = 'click to sort';
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.getAttribute('data-order') !== 'asc';
    function compare(x, y) {  // numbers as numbers (long integer ids digit by digit), text as text
      if (/^[0-9]+$/.test(x + y) && x.length !== y.length) return x.length - y.length;
      if (/^[0-9]+$/.test(x + y)) return x.localeCompare(y);
      var nx = Number(x), ny = Number(y);
      return (x === '' || y === '' || isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
    }
    rows.sort(function (a, b) {
      var cmp = compare(a.cells[col].textContent, b.cells[col].textContent);
      return asc ? cmp : -cmp;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    th.setAttribute('data-order', asc ? 'asc' : 'desc');
  });
});

// The page counts its own images once loaded, so a browser (or a test driving one) can tell that
// every figure decoded: <body data-images-loaded="N/M">.
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-loaded', ok + '/' + imgs.length);
});
