// modelplane console: live updates over one Server-Sent Events stream per
// tab. Pages work without this script; it only saves the reload.
(function () {
  "use strict";
  var main = document.getElementById("main");
  var status = document.getElementById("live-status");
  if (!main) return;

  document.addEventListener("submit", function (e) {
    var msg = e.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) e.preventDefault();
  });

  var live = main.getAttribute("data-live");
  if (!live || !window.EventSource) return;

  var busy = false, again = false;
  function editing() {
    var a = document.activeElement;
    return a && main.contains(a) && /^(INPUT|TEXTAREA|SELECT)$/.test(a.tagName) && a.type !== "hidden";
  }
  function refresh() {
    if (busy || editing()) { again = true; return; }
    busy = true; again = false;
    fetch(window.location.href, { headers: { "X-Console-Partial": "1" }, credentials: "same-origin" })
      .then(function (r) {
        if (r.redirected || r.status === 401) { window.location.reload(); return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) {
        // Someone started typing while the page was read: keep their text.
        if (html && editing()) { again = true; return; }
        if (html !== null && html !== undefined) {
          main.innerHTML = html;
          main.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () {})
      .then(function () { busy = false; if (again) refresh(); });
  }
  document.addEventListener("focusout", function () { if (again) setTimeout(refresh, 0); });

  function relevant(ev) {
    if (live === "*") return true;
    try { return JSON.parse(ev.data).promotion === live; } catch (_) { return false; }
  }
  var es = new EventSource("/events?after=" + encodeURIComponent(main.getAttribute("data-seq") || ""));
  function on(name) {
    es.addEventListener(name, function (ev) { if (relevant(ev)) refresh(); });
  }
  on("promotion"); on("traffic"); on("audit");
  es.addEventListener("reload", refresh);
  es.addEventListener("hello", function () { if (status) status.textContent = "Live: this page updates by itself."; });
  es.onerror = function () { if (status) status.textContent = "Live updates paused; reconnecting…"; };
})();
