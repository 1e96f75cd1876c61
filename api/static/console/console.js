// Safety console: keyboard-driven review, reveal of blurred messages, help overlay.
// No inline script anywhere (CSP default-src 'self'); keys are ignored while typing in a field.
(function () {
  "use strict";
  const page = document.body.dataset.page;
  const help = document.getElementById("help");

  function typing(el) {
    if (!el) return false;
    const tag = el.tagName;
    return el.isContentEditable || tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT";
  }
  function toggleHelp(show) {
    if (!help) return;
    help.hidden = show === undefined ? !help.hidden : !show;
    if (!help.hidden) { const b = help.querySelector("[data-help-close]"); if (b) b.focus(); }
  }
  document.addEventListener("click", function (ev) {
    const t = ev.target;
    if (!(t instanceof Element)) return;
    if (t.closest("[data-help-open]")) toggleHelp(true);
    if (t.closest("[data-help-close]") || t === help) toggleHelp(false);
    const reveal = t.closest("[data-reveal]");
    if (reveal) revealMessage();
  });
  function revealMessage() {
    const m = document.querySelector(".message.blurred");
    if (!m) return;
    m.classList.remove("blurred");
    m.dataset.blurred = "false";
    const b = m.querySelector("[data-reveal]");
    if (b) b.remove();
  }

  // Queue selection survives the 5-second refresh: it is kept by case id.
  let selectedId = sessionStorage.getItem("console.selected") || null;
  function rows() { return Array.from(document.querySelectorAll("#queue-rows tr[data-case-id]")); }
  function paint() {
    const all = rows();
    let found = false;
    all.forEach(function (r) {
      const on = r.dataset.caseId === selectedId;
      r.classList.toggle("selected", on);
      r.setAttribute("aria-selected", on ? "true" : "false");
      found = found || on;
    });
    if (!found && all.length) { selectedId = all[0].dataset.caseId; all[0].classList.add("selected"); all[0].setAttribute("aria-selected", "true"); }
  }
  function move(delta) {
    const all = rows();
    if (!all.length) return;
    let i = all.findIndex(function (r) { return r.dataset.caseId === selectedId; });
    i = Math.max(0, Math.min(all.length - 1, (i < 0 ? 0 : i + delta)));
    selectedId = all[i].dataset.caseId;
    sessionStorage.setItem("console.selected", selectedId);
    paint();
    all[i].scrollIntoView({ block: "nearest" });
  }
  function selectedRow() { return rows().find(function (r) { return r.dataset.caseId === selectedId; }); }
  if (page === "queue") {
    paint();
    document.body.addEventListener("htmx:afterSwap", paint);
  }

  function submitDecision(violation) {
    const form = document.getElementById("decision-form");
    if (!form) return;
    const radio = document.getElementById(violation ? "violation-yes" : "violation-no");
    radio.checked = true;
    if (!violation) form.querySelectorAll("input[name=actions]").forEach(function (c) { c.checked = false; });
    form.requestSubmit(form.querySelector("[data-testid=submit]"));
  }
  function click(selector) { const el = document.querySelector(selector); if (el) el.click(); }

  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === "Escape") { toggleHelp(false); return; }
    if (typing(ev.target)) return;
    const k = ev.key;
    if (k === "?") { toggleHelp(); ev.preventDefault(); return; }
    if (help && !help.hidden) return;
    if (page === "queue") {
      if (k === "j") { move(1); ev.preventDefault(); }
      else if (k === "k") { move(-1); ev.preventDefault(); }
      else if (k === "Enter" || k === "o") { const r = selectedRow(); if (r) { window.location.href = r.dataset.caseUrl; ev.preventDefault(); } }
      else if (k === "c") { const r = selectedRow(); const b = r && r.querySelector("[data-claim]"); if (b) { b.click(); ev.preventDefault(); } }
      else if (k === "n") { click("[data-testid=claim-next]"); ev.preventDefault(); }
      return;
    }
    if (page === "case") {
      if (k === "c") { click("[data-claim]"); ev.preventDefault(); }
      else if (k === "a") { submitDecision(false); ev.preventDefault(); }
      else if (k === "x") { submitDecision(true); ev.preventDefault(); }
      else if (k === "r") { revealMessage(); ev.preventDefault(); }
      else if (k === "n") {
        // A decision already chosen: submit it and go on; otherwise claim the next case.
        const f = document.getElementById("decision-form");
        const chosen = f && f.querySelector("input[name=violation]:checked");
        if (chosen) f.requestSubmit(f.querySelector("[data-testid=submit-next]")); else click("[data-testid=claim-next]");
        ev.preventDefault();
      }
      else if (/^[1-9]$/.test(k)) {
        const box = document.querySelector("input[data-action-key='" + k + "']");
        if (box) { box.checked = !box.checked; document.getElementById("violation-yes").checked = true; ev.preventDefault(); }
      }
    }
  });
})();
