// Progressive enhancement: every page works without this script. Where the
// body has data-refresh (ms), the elements marked data-live are reloaded
// from the server that often, while the tab is visible.
(function () {
  "use strict";
  var period = parseInt(document.body.getAttribute("data-refresh"), 10);
  if (!period || !window.fetch || !window.DOMParser) {
    return;
  }
  var busy = false;
  function refresh() {
    if (busy || document.visibilityState !== "visible") {
      return;
    }
    busy = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Requested-With": "fetch" } })
      .then(function (resp) {
        if (!resp.ok || resp.redirected) {
          throw new Error("refresh: " + resp.status);
        }
        return resp.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (el) {
          var fresh = doc.getElementById(el.id);
          if (fresh && fresh.innerHTML !== el.innerHTML && !el.contains(document.activeElement)) {
            el.innerHTML = fresh.innerHTML;
          }
        });
      })
      .catch(function () { /* keep the page as it is; the next tick retries */ })
      .then(function () { busy = false; });
  }
  window.setInterval(refresh, period);
  document.addEventListener("visibilitychange", refresh);
})();
