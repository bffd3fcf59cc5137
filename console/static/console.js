/* The console's own script (no build step, no inline script: the CSP allows only our files).

   Work is never lost in a form marked data-autosave:
   - every change is kept in this tab's sessionStorage at once, so a page that comes back
     (after signing in again, a reload, a crash) offers the typed text again;
   - a form that has an id (data-autosave-url) is saved a moment after typing stops, with a
     visible "Saved HH:MM" and an Undo of the last save;
   - leaving the page while anything is unsaved asks first (beforeunload);
   - when the session has ended, nothing is sent and nothing navigates away: a line says so,
     with a link to sign in in a new tab; back here, Save (or the next autosave) saves.
   A form or button marked data-saves-first="<form id>" saves that form before it acts.
*/
(function () {
  "use strict";

  var DELAY_MS = 1500;
  // The session's CSRF token and whether it is alive. A new sign-in (in another tab) has a
  // new token: every form on this page takes it, so what was typed here can still be sent.
  function session() {
    return fetch("/admin/api/me", {
      credentials: "same-origin",
      headers: { "Accept": "application/json" },
    }).then(function (response) {
      if (response.status === 401) return null;
      return response.json().then(function (me) {
        Array.prototype.forEach.call(document.querySelectorAll("input[name=csrf_token]"),
          function (field) { field.value = me.csrf_token; });
        document.body.setAttribute("hx-headers", JSON.stringify({ "X-CSRF-Token": me.csrf_token }));
        return me.csrf_token;
      });
    });
  }

  function snapshot(form) {
    var values = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.type === "hidden" || el.type === "submit" || el.type === "button") return;
      if (el.type === "checkbox" || el.type === "radio") {
        values[el.name + "=" + el.value] = el.checked;
      } else {
        values[el.id || el.name] = el.value; // by id: several selects share a name
      }
    });
    return values;
  }

  function restore(form, values) {
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.type === "hidden") return;
      if (el.type === "checkbox" || el.type === "radio") {
        var key = el.name + "=" + el.value;
        if (key in values) el.checked = values[key];
      } else if ((el.id || el.name) in values) {
        el.value = values[el.id || el.name];
      }
    });
  }

  function same(a, b) {
    return JSON.stringify(a) === JSON.stringify(b);
  }

  function hhmm(date) {
    var h = String(date.getHours()).padStart(2, "0");
    var m = String(date.getMinutes()).padStart(2, "0");
    return h + ":" + m;
  }

  function Autosave(form) {
    this.form = form;
    this.url = form.getAttribute("data-autosave-url");
    this.key = "clinicmail:unsaved:" + form.getAttribute("data-autosave");
    this.saved = snapshot(form); // what the server holds
    this.previous = null; // what it held before the last save (for Undo)
    this.timer = null;
    this.busy = false;
    this.signedOut = false;
    this.submitting = false;
    this.status = document.createElement("p");
    this.status.className = "save-state";
    this.status.id = "save-state";
    this.status.setAttribute("role", "status");
    this.status.setAttribute("aria-live", "polite");
    var actions = form.querySelector(".actions") || form;
    actions.parentNode.insertBefore(this.status, actions);
    this.bring_back();
    this.listen();
  }

  Autosave.prototype.dirty = function () {
    return !same(snapshot(this.form), this.saved);
  };

  Autosave.prototype.keep = function () {
    try {
      if (this.dirty()) {
        sessionStorage.setItem(this.key, JSON.stringify(snapshot(this.form)));
      } else {
        sessionStorage.removeItem(this.key);
      }
    } catch (e) {
      /* storage full or refused: the leave-page warning still guards the text */
    }
  };

  Autosave.prototype.bring_back = function () {
    var kept = null;
    try {
      kept = JSON.parse(sessionStorage.getItem(this.key) || "null");
    } catch (e) {
      kept = null;
    }
    var sent = null;
    try {
      sent = JSON.parse(sessionStorage.getItem(this.key + ":sent") || "null");
      sessionStorage.removeItem(this.key + ":sent");
    } catch (e) {
      sent = null;
    }
    // Kept text the page's own submit delivered is with the server (which may have written
    // it differently, e.g. the step settings form into the YAML): nothing to bring back.
    if (!kept || same(kept, this.saved) || (sent && same(kept, sent))) {
      try { sessionStorage.removeItem(this.key); } catch (e) { /* nothing to clear */ }
      return;
    }
    restore(this.form, kept);
    this.say("Your unsaved text from before is back on this page. It is not saved yet.", "warn");
    this.form.dispatchEvent(new Event("change", { bubbles: true })); // refresh the preview
    this.schedule();
  };

  // The form is being submitted: remember what it sent, so the next page knows it arrived.
  Autosave.prototype.sent_off = function () {
    try {
      sessionStorage.setItem(this.key + ":sent", JSON.stringify(snapshot(this.form)));
    } catch (e) {
      /* storage refused: the kept text may be offered back once, harmlessly */
    }
  };

  Autosave.prototype.say = function (text, tone, undo) {
    var status = this.status;
    status.textContent = text;
    status.setAttribute("data-tone", tone || "");
    if (undo) {
      var button = document.createElement("button");
      button.type = "button";
      button.id = "undo-save";
      button.textContent = "Undo";
      button.addEventListener("click", this.undo.bind(this));
      status.appendChild(document.createTextNode(" "));
      status.appendChild(button);
    }
  };

  Autosave.prototype.signed_out = function () {
    this.signedOut = true;
    this.status.textContent = "";
    this.status.setAttribute("data-tone", "warn");
    this.status.appendChild(document.createTextNode(
      "Your session has ended, so this was not saved. Your text is kept on this page: "));
    var link = document.createElement("a");
    link.href = "/admin/login";
    link.target = "_blank";
    link.rel = "noopener";
    link.id = "sign-in-again";
    link.textContent = "sign in again in a new tab";
    this.status.appendChild(link);
    this.status.appendChild(document.createTextNode(", then come back here and save."));
  };

  Autosave.prototype.schedule = function () {
    if (!this.url) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(this.save.bind(this), DELAY_MS);
  };

  Autosave.prototype.send = function (token) {
    var body = new FormData(this.form);
    return fetch(this.url, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-Autosave": "1", "X-CSRF-Token": token, "Accept": "application/json" },
    });
  };

  // Save now; resolves true when the server holds what is on the page.
  Autosave.prototype.save = function () {
    var self = this;
    clearTimeout(self.timer);
    if (!self.url || !self.dirty()) return Promise.resolve(!self.dirty());
    if (self.busy) return self.busy;
    var sent = snapshot(self.form);
    self.say("Saving…");
    self.busy = session().then(function (token) {
      if (token === null) return { status: 401 };
      return self.send(token);
    }).then(function (response) {
      if (response.status === 401) {
        self.signed_out();
        return false;
      }
      return response.json().then(function (data) {
        if (!response.ok) {
          self.say(data.detail || "Not saved: reload the page to see why.", "error");
          return false;
        }
        self.signedOut = false;
        var revision = self.form.querySelector("input[name=revision]");
        if (revision && data.revision) revision.value = data.revision;
        // The settings form is written into the YAML on the server: show the YAML as saved.
        var area = self.form.querySelector("textarea[name=settings]");
        var key = area ? area.id || area.name : null;
        if (area && typeof data.settings === "string" && area.value === sent[key]) {
          area.value = data.settings;
          sent[key] = data.settings;
        }
        self.previous = self.saved;
        self.saved = sent;
        self.keep();
        self.say("Saved " + hhmm(new Date(data.saved_at)), "ok", true);
        return !self.dirty();
      });
    }, function () {
      self.say("Not saved: the console cannot be reached. Your text is kept on this page.", "warn");
      return false;
    }).then(function (done) {
      self.busy = false;
      if (!done && self.dirty() && !self.signedOut) self.schedule();
      return done;
    });
    return self.busy;
  };

  Autosave.prototype.undo = function () {
    if (!this.previous) return;
    restore(this.form, this.previous);
    this.form.dispatchEvent(new Event("change", { bubbles: true }));
    this.keep();
    this.save();
  };

  Autosave.prototype.listen = function () {
    var self = this;
    var changed = function () {
      self.keep();
      if (self.dirty()) {
        if (!self.signedOut) self.say("Unsaved changes", "warn");
        self.schedule();
      }
    };
    self.form.addEventListener("input", changed);
    self.form.addEventListener("change", changed);
    window.addEventListener("focus", function () {
      if (self.signedOut && self.dirty()) self.save();
    });
    window.addEventListener("beforeunload", function (event) {
      if (self.submitting || !self.dirty()) return;
      event.preventDefault();
      event.returnValue = "";
    });
    self.form.addEventListener("submit", function (event) {
      if (self.form.getAttribute("data-checked") === "1") {
        self.submitting = true;
        self.sent_off();
        return;
      }
      // Before a full submit, make sure the session is alive: a dead one would land on the
      // sign-in page and lose the text.
      event.preventDefault();
      var submitter = event.submitter || null;
      session()
        .then(function (token) {
          if (token === null) {
            self.signed_out();
            return;
          }
          self.form.setAttribute("data-checked", "1");
          self.submitting = true;
          if (submitter && self.form.requestSubmit) self.form.requestSubmit(submitter);
          else self.form.submit();
        }, function () {
          self.say("The console cannot be reached. Your text is kept on this page.", "warn");
        });
    });
  };

  var editors = {};
  Array.prototype.forEach.call(document.querySelectorAll("form[data-autosave]"), function (form) {
    editors[form.id] = new Autosave(form);
  });

  // Actions on "the saved draft" save the draft first (or stop and say why).
  Array.prototype.forEach.call(document.querySelectorAll("form[data-saves-first]"), function (form) {
    form.addEventListener("submit", function (event) {
      var editor = editors[form.getAttribute("data-saves-first")];
      if (!editor || form.getAttribute("data-checked") === "1" || !editor.dirty()) return;
      event.preventDefault();
      editor.save().then(function (done) {
        if (!done) return; // the editor's line says why
        form.setAttribute("data-checked", "1");
        editor.submitting = true;
        form.submit();
      });
    });
  });

  // A step's settings: once the advanced (YAML) view is edited, it is what gets saved; the form
  // pauses (its fields are not sent) until the page is drawn again from the saved settings.
  Array.prototype.forEach.call(document.querySelectorAll("[data-advanced-of]"), function (area) {
    area.addEventListener("input", function () {
      var fields = document.getElementById(area.getAttribute("data-advanced-of"));
      if (!fields || fields.disabled) return;
      fields.disabled = true;
      var note = document.getElementById("form-paused");
      if (note) note.hidden = false;
    });
  });

  // A new campaign's id follows its title until the person writes an id of their own.
  Array.prototype.forEach.call(document.querySelectorAll("input[data-slug-from]"), function (id) {
    var title = document.getElementById(id.getAttribute("data-slug-from"));
    if (!title) return;
    var own = id.value !== "";
    id.addEventListener("input", function () { own = id.value !== ""; });
    title.addEventListener("input", function () {
      if (own) return;
      id.value = title.value.toLowerCase().replace(/[^a-z0-9]+/g, "-")
        .replace(/^-+|-+$/g, "").slice(0, 63).replace(/-+$/, "");
    });
  });

  // htmx (the live previews) must never navigate away because the session ended.
  document.body.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail && event.detail.xhr;
    if (!xhr || xhr.status !== 401) return;
    Object.keys(editors).forEach(function (id) { editors[id].signed_out(); });
  });
})();
