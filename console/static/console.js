// simgate console: refresh the live part of a page without a full reload.
// The page works without this file: every page has a plain Refresh link.
(function () {
  "use strict";
  var live = document.querySelector("[data-refresh]");
  if (!live || !window.fetch) {
    return;
  }
  var every = parseInt(live.getAttribute("data-refresh"), 10) * 1000 || 5000;
  var url = live.getAttribute("data-fragment");
  if (!url || live.getAttribute("data-refresh") === "0") {
    return;
  }
  var busy = false;
  function refresh() {
    if (busy || document.hidden) {
      return;
    }
    busy = true;
    fetch(url, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" }, redirect: "manual" })
      .then(function (r) {
        if (r.status !== 200) {
          // Logged out or the server went away: stop, the Refresh link is
          // still there.
          window.clearInterval(timer);
          live.setAttribute("data-stale", "true");
          return null;
        }
        return r.text();
      })
      .then(function (html) {
        if (html !== null) {
          live.innerHTML = html;
          live.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () {
        live.setAttribute("data-stale", "true");
      })
      .then(function () {
        busy = false;
      });
  }
  var timer = window.setInterval(refresh, every);
  document.documentElement.classList.add("js");
})();
