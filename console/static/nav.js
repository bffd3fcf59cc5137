/* clinicmail console: the small behaviours every page shares. Loaded from our own origin
   (the Content-Security-Policy allows no inline script).
   - The navigation collapses behind a "Menu" button on narrow screens.
   - Every region that scrolls (a wide table, a long text block) can be reached and scrolled by
     keyboard: it gets tabindex=0, the region role and a label (its own data-label, else the
     nearest heading before it). Checked again after a resize and after htmx swaps content. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function setUpMenu() {
    var toggle = document.getElementById("menu-toggle");
    var menu = document.getElementById("console-menu");
    if (!toggle || !menu) return;
    toggle.hidden = false;
    function setOpen(open) {
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    }
    toggle.addEventListener("click", function () {
      setOpen(toggle.getAttribute("aria-expanded") !== "true");
    });
    document.addEventListener("keydown", function (event) {
      if (event.key === "Escape" && toggle.getAttribute("aria-expanded") === "true") {
        setOpen(false);
        toggle.focus();
      }
    });
  }

  function labelFor(el) {
    if (el.dataset.label) return el.dataset.label;
    var node = el;
    while (node && node !== document.body) {
      var prev = node.previousElementSibling;
      while (prev) {
        if (/^H[1-6]$/.test(prev.tagName)) return prev.textContent.trim();
        var inner = prev.querySelector && prev.querySelector("h1, h2, h3, h4, h5, h6");
        if (inner) return inner.textContent.trim();
        prev = prev.previousElementSibling;
      }
      node = node.parentElement;
    }
    return "Scrolling content";
  }

  function scrolls(el) {
    var style = window.getComputedStyle(el);
    var x = /(auto|scroll)/.test(style.overflowX) && el.scrollWidth > el.clientWidth + 1;
    var y = /(auto|scroll)/.test(style.overflowY) && el.scrollHeight > el.clientHeight + 1;
    return x || y;
  }

  function reachScrollRegions() {
    var all = document.querySelectorAll("main *");
    for (var i = 0; i < all.length; i++) {
      var el = all[i];
      if (el.dataset.scrollRegion === "own") continue;
      var made = el.dataset.scrollRegion === "made";
      if (scrolls(el)) {
        if (made || el.hasAttribute("tabindex")) continue;
        el.setAttribute("tabindex", "0");
        var added = [];
        if (!el.hasAttribute("role")) {
          el.setAttribute("role", "region");
          added.push("role");
        }
        if (!el.hasAttribute("aria-label") && !el.hasAttribute("aria-labelledby")) {
          el.setAttribute("aria-label", labelFor(el) + " (scrolls)");
          added.push("aria-label");
        }
        el.dataset.scrollRegion = "made";
        el.dataset.scrollAdded = added.join(" ");
      } else if (made) {
        /* it no longer scrolls (a wider window): no tab stop that does nothing */
        el.removeAttribute("tabindex");
        (el.dataset.scrollAdded || "").split(" ").forEach(function (name) {
          if (name) el.removeAttribute(name);
        });
        delete el.dataset.scrollRegion;
        delete el.dataset.scrollAdded;
      }
    }
  }

  var pending = null;
  function later() {
    if (pending) window.clearTimeout(pending);
    pending = window.setTimeout(reachScrollRegions, 150);
  }

  function start() {
    setUpMenu();
    reachScrollRegions();
    window.addEventListener("resize", later);
    document.body.addEventListener("htmx:afterSettle", reachScrollRegions);
    document.addEventListener("toggle", later, true); /* a <details> opened */
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
