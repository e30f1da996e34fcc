// Keeps an open inbox page current: polls the page's small JSON endpoint and, when the
// version it reports changes, fetches the page again and swaps in its [data-live] parts.
// A part holding a form someone is filling in is left alone until they are done.
(function () {
  "use strict";
  var root = document.querySelector("[data-poll-url]");
  if (!root || !window.fetch || !window.DOMParser) {
    return;
  }
  var pollUrl = root.getAttribute("data-poll-url");
  // The page to take fresh parts from: a form's answer page cannot be fetched again.
  var pageUrl = root.getAttribute("data-page-url") || window.location.href;
  var every = Math.max(1000, Number(root.getAttribute("data-poll-ms")) || 5000);
  var version = root.getAttribute("data-version");
  var busy = false;

  function changed(element) {
    if (element.type === "hidden" || element.tagName === "BUTTON") {
      return false;
    }
    if (element === document.activeElement) {
      return true;
    }
    if (element.type === "checkbox" || element.type === "radio") {
      return element.checked !== element.defaultChecked;
    }
    if (element.tagName === "SELECT") {
      // Without a selected attribute a single select starts on its first option.
      var initial = element.multiple ? -1 : 0;
      for (var i = 0; i < element.options.length; i++) {
        if (element.options[i].defaultSelected) {
          initial = i;
          break;
        }
      }
      return element.selectedIndex !== initial;
    }
    return "defaultValue" in element && element.value !== element.defaultValue;
  }

  function beingEdited(part) {
    var forms = part.querySelectorAll("form");
    for (var i = 0; i < forms.length; i++) {
      for (var j = 0; j < forms[i].elements.length; j++) {
        if (changed(forms[i].elements[j])) {
          return true;
        }
      }
    }
    return false;
  }

  function refresh() {
    return fetch(pageUrl, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "text/html" }
    }).then(function (response) {
      if (!response.ok) {
        return false;
      }
      return response.text().then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        var parts = fresh.querySelectorAll("[data-live][id]");
        var complete = true;
        for (var i = 0; i < parts.length; i++) {
          var current = document.getElementById(parts[i].id);
          if (!current) {
            continue;
          }
          if (beingEdited(current)) {
            complete = false;
            continue;
          }
          current.replaceWith(document.importNode(parts[i], true));
        }
        return complete;
      });
    });
  }

  function tick() {
    if (busy) {
      return;
    }
    busy = true;
    fetch(pollUrl, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" }
    }).then(function (response) {
      if (response.status === 401) {
        window.location.reload(); // signed out meanwhile: show the sign-in page
        return null;
      }
      return response.ok ? response.json() : null;
    }).then(function (state) {
      if (!state || state.version === version) {
        return null;
      }
      var seen = state.version;
      return refresh().then(function (complete) {
        if (complete) {
          version = seen;
          root.setAttribute("data-version", seen);
        }
      });
    }).catch(function () {
      // A network hiccup: the next tick tries again.
    }).then(function () {
      busy = false;
    });
  }

  window.setInterval(tick, every);
}());
