// Progressive enhancement only: every page works without it.
"use strict";

function formatRemaining(ms) {
  if (ms <= 0) return "expired";
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? h + "h " : "") + (h || m ? m + "m " : "") + r + "s left";
}

function tick() {
  document.querySelectorAll("[data-expires]").forEach((el) => {
    el.textContent = formatRemaining(new Date(el.dataset.expires) - Date.now());
  });
  document.querySelectorAll("progress[data-starts]").forEach((bar) => {
    const starts = new Date(bar.dataset.starts), ends = new Date(bar.dataset.ends);
    if (!(ends > starts)) return;  // the server's figure stands
    const used = Math.round(100 * Math.min(1, Math.max(0, (Date.now() - starts) / (ends - starts))));
    bar.value = used;
    bar.textContent = used + "%";
    const label = bar.parentElement.querySelector("[data-window-label]");
    if (label) label.textContent = used + "%";
  });
}

// An invitation link carries its code after "#", which browsers never send to a
// server (no proxy logs it): post it, and drop it from the address bar.
function postInvitationCode() {
  const form = document.getElementById("invitation-form");
  if (!form || location.hash.length < 2) return;
  try {
    form.elements.token.value = decodeURIComponent(location.hash.slice(1));
  } catch (malformed) {
    return;  // not a code of ours: the form stays to be filled in
  }
  history.replaceState(null, "", location.pathname);
  form.submit();
}

document.addEventListener("DOMContentLoaded", () => {
  postInvitationCode();
  tick();
  setInterval(tick, 1000);
  document.querySelectorAll("[data-copy]").forEach((button) => {
    button.hidden = false;
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      await navigator.clipboard.writeText(source.textContent.trim());
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    });
  });
});
