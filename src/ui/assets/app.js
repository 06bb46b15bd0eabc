// Dashboard behaviour: charts from JSON islands (uPlot), copy buttons, and the confirm step of
// destructive forms. No inline scripts anywhere (the pages' CSP allows only 'self').
(function () {
  'use strict';

  var palette = ['#1d4ed8', '#047857', '#b91c1c', '#a16207', '#7c3aed'];

  function drawCharts(root) {
    root.querySelectorAll('[data-chart]').forEach(function (el) {
      if (el.dataset.drawn) return;
      var island = document.getElementById(el.dataset.chart);
      if (!island || typeof uPlot === 'undefined') return;
      var spec = JSON.parse(island.textContent);
      el.dataset.drawn = '1';
      var width = Math.max(260, el.clientWidth || 600);
      var series = [{}].concat(spec.series.map(function (s, i) {
        return { label: s.label, stroke: palette[i % palette.length], width: 2, fill: i === 0 && spec.fill ? 'rgba(29,78,216,0.08)' : undefined,
          value: s.percent ? function (u, v) { return v == null ? '-' : (v * 100).toFixed(2) + '%'; } : undefined };
      }));
      var axes = [{}, { size: 60, values: spec.percent ? function (u, vals) { return vals.map(function (v) { return (v * 100).toFixed(1) + '%'; }); } : undefined }];
      // One point alone would stretch the time axis over years: show a few minutes around it.
      var x = { time: true };
      if (spec.x.length < 2) x.range = function () { var t = spec.x[0] || Date.now() / 1000; return [t - 300, t + 300]; };
      var plot = new uPlot({ width: width, height: spec.height || 220, series: series, axes: axes, scales: { x: x } },
        [spec.x].concat(spec.series.map(function (s) { return s.values; })), el);
      new ResizeObserver(function () { plot.setSize({ width: Math.max(260, el.clientWidth), height: spec.height || 220 }); }).observe(el);
    });
  }

  document.addEventListener('click', function (event) {
    var button = event.target.closest('[data-copy]');
    if (!button) return;
    var target = document.getElementById(button.dataset.copy);
    if (!target || !navigator.clipboard) return;
    navigator.clipboard.writeText(target.textContent.trim()).then(function () {
      button.textContent = 'Copied';
      setTimeout(function () { button.textContent = 'Copy'; }, 1500);
    });
  });

  document.addEventListener('submit', function (event) {
    var message = event.target.dataset && event.target.dataset.confirm;
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // A contact import: the file is the request body (streamed into the import on the server), and
  // while it uploads the list's newest import is polled into the status element.
  function refusal(response) {
    return response.text().then(function (text) {
      var notice = new DOMParser().parseFromString(text, 'text/html').querySelector('.notice');
      return 'The import was refused (' + response.status + '): ' + (notice ? notice.textContent.trim() : response.statusText);
    });
  }
  document.addEventListener('submit', function (event) {
    var form = event.target;
    if (!form.matches || !form.matches('form[data-import]')) return;
    event.preventDefault();
    var input = form.querySelector('input[type=file]');
    var out = document.getElementById(form.dataset.import);
    var button = form.querySelector('button[type=submit]');
    if (!input.files.length || !out) return;
    var finished = false;
    button.disabled = true;
    var poll = function () {
      if (finished) return;
      fetch(form.dataset.progress + '?not=' + encodeURIComponent(form.dataset.last || ''), { credentials: 'same-origin' })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (text) { if (!finished && text) out.innerHTML = text; })
        .catch(function () {})
        .then(function () { if (!finished) setTimeout(poll, 500); });
    };
    poll();
    fetch(form.action, {
      method: 'POST', credentials: 'same-origin', body: input.files[0],
      headers: { 'content-type': 'text/csv', 'x-csrf-token': form.querySelector('input[name=_csrf]').value },
    }).then(function (r) {
      return r.ok ? r.text().then(function (text) {
        finished = true;
        out.innerHTML = text;
        // The next upload from this page waits for an import newer than this one.
        var shown = out.querySelector('[data-import]');
        if (shown) form.dataset.last = shown.dataset.import;
      })
        : refusal(r).then(function (message) { finished = true; out.textContent = message; });
    }).catch(function (err) {
      finished = true;
      out.textContent = 'The upload failed: ' + err.message;
    }).then(function () { button.disabled = false; });
  });

  document.addEventListener('DOMContentLoaded', function () { drawCharts(document); });
  document.addEventListener('htmx:afterSwap', function (event) { drawCharts(event.target); });
})();
