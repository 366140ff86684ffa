// What a polled widget's view adds (joined in front of counters.js and topology.js by esm.py).
// Tell the kernel this view exists: now, every 30 s, and whenever the page is hidden (a
// background tab is not worth reading the lab for) or shown again; and when the view goes.
function announce(model) {
  const id = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  const say = (alive) => {
    try {
      model.send({ netlab: "view", id, alive, hidden: document.visibilityState === "hidden" });
    } catch (e) {
      // no kernel (a saved notebook's widget state): nothing to tell
    }
  };
  const seen = () => say(true);
  say(true);
  const beat = setInterval(seen, 30000);
  document.addEventListener("visibilitychange", seen);
  return () => {
    clearInterval(beat);
    document.removeEventListener("visibilitychange", seen);
    say(false);
  };
}
