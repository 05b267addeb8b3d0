// Marks (yes / no buttons on every page), and the sky map's clicks: the rest of the explorer is plain HTML.
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button.mark");
  if (!button) return;
  const group = button.closest(".marks");
  const objid = group.dataset.objid;
  const mark = group.dataset.mark === button.dataset.mark ? "clear" : button.dataset.mark;
  const answer = await fetch("/api/marks", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ objid: objid, mark: mark }),
  });
  const body = await answer.json();
  if (!answer.ok) { alert(body.error); return; }
  document.querySelectorAll(`.marks[data-objid="${objid}"]`).forEach((g) => { g.dataset.mark = body.mark || ""; });
  document.body.dataset.marks = body.marks;
  if (document.getElementById("suggested") || document.getElementById("yes-count")) location.reload();
});

document.addEventListener("DOMContentLoaded", async () => {
  const marks = document.querySelectorAll(".marks");
  if (marks.length) {
    const answer = await fetch("/api/marks");
    const known = Object.fromEntries((await answer.json()).marks.map((m) => [m.objid, m.mark]));  // objids as strings: 64 bits
    marks.forEach((g) => { g.dataset.mark = known[g.dataset.objid] || ""; });
  }
  document.body.dataset.ready = "yes";
  const map = document.getElementById("skymap");
  if (!map) return;
  map.addEventListener("click", (event) => {
    const r = map.getBoundingClientRect();
    const scale = map.naturalWidth / r.width;
    const x = (event.clientX - r.left) * scale - Number(map.dataset.left);
    const y = (event.clientY - r.top) * scale - Number(map.dataset.top);
    const fx = x / Number(map.dataset.width), fy = y / Number(map.dataset.height);
    if (fx < 0 || fx > 1 || fy < 0 || fy > 1) return;
    const ra = Number(map.dataset.raLeft) + fx * (Number(map.dataset.raRight) - Number(map.dataset.raLeft));
    const dec = Number(map.dataset.decTop) + fy * (Number(map.dataset.decBottom) - Number(map.dataset.decTop));
    location.href = `/search?ra=${ra.toFixed(5)}&dec=${dec.toFixed(5)}&radius=${map.dataset.radius}`;
  });
});
