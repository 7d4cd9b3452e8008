// Zoom and pan of the seat map: the hall fits the screen, then +/- buttons or a two-finger pinch
// change the seat size (a CSS variable), and the viewport scrolls (one finger pans natively).

export const TAP_SIZE = 32; // px: the smallest seat a finger hits reliably (WCAG 2.5.5 asks 44 for AAA)
const MAX_SIZE = 48;
const MIN_SIZE = 8;
const GAP = 3; // px between grid cells, as in .seat-grid
const DEFAULT_SIZE = 28;

export class Zoom {
  constructor(viewport, apply) {
    this.viewport = viewport;
    this.apply = apply;
    this.columns = 0;
    this.fitSize = DEFAULT_SIZE;
    this.size = DEFAULT_SIZE;
    this.pinch = null;
    // Touch events, not pointer events: a native pan cancels pointers, touchmove keeps coming.
    viewport.addEventListener("touchstart", (e) => this.onTouchStart(e), { passive: true });
    viewport.addEventListener("touchmove", (e) => this.onTouchMove(e), { passive: false });
    viewport.addEventListener("touchend", (e) => this.onTouchEnd(e));
    viewport.addEventListener("touchcancel", (e) => this.onTouchEnd(e));
    window.addEventListener("resize", () => this.refit());
  }

  /** The zoom buttons and the current seat size, announced politely. */
  controls(label) {
    const button = (text, name, onclick) => {
      const node = document.createElement("button");
      Object.assign(node, { type: "button", className: "btn secondary zoom-btn", textContent: text, onclick });
      node.setAttribute("aria-label", name);
      return node;
    };
    this.status = document.createElement("span");
    this.status.className = "zoom-status muted";
    this.status.setAttribute("aria-live", "polite");
    const bar = document.createElement("div");
    bar.className = "zoom-bar";
    bar.setAttribute("role", "toolbar");
    bar.setAttribute("aria-label", `Zoom of ${label}`);
    bar.append(
      button("\u2212", "Zoom out", () => this.step(-1)),
      button("Fit", "Fit the hall to the screen", () => this.set(this.fitSize)),
      button("+", "Zoom in", () => this.step(1)),
      this.status);
    return bar;
  }

  /** Size the seats so that `columns` grid columns fill the viewport's width (at most 32 px). */
  fit(columns) {
    this.columns = columns;
    const width = this.viewport.clientWidth;
    const fit = width ? Math.floor((width - 4) / columns) - GAP : DEFAULT_SIZE;
    this.fitSize = Math.max(MIN_SIZE, Math.min(TAP_SIZE, fit));
    this.set(this.fitSize);
  }

  refit() {
    if (!this.columns || !this.viewport.isConnected) return; // a map replaced by another show's
    const wasFit = this.size === this.fitSize;
    const before = this.size;
    this.fit(this.columns);
    if (!wasFit) this.set(Math.max(before, this.fitSize));
  }

  /** One zoom step: in goes at least to tapping size, out never below the fitted size. */
  step(direction) {
    if (direction > 0) this.set(this.size < TAP_SIZE ? Math.max(TAP_SIZE, this.size * 1.5) : this.size * 1.25);
    else this.set(this.size / 1.5 < TAP_SIZE && this.size > TAP_SIZE ? TAP_SIZE : this.size / 1.5);
  }

  /** Set the seat size, keeping the point under (x, y) of the viewport (default: its centre) still. */
  set(px, x = null, y = null) {
    const size = Math.round(Math.max(this.fitSize, Math.min(MAX_SIZE, px)));
    const view = this.viewport;
    const cx = x ?? view.clientWidth / 2;
    const cy = y ?? view.clientHeight / 2;
    const ratio = (size + GAP) / (this.size + GAP);
    const left = (view.scrollLeft + cx) * ratio - cx;
    const top = (view.scrollTop + cy) * ratio - cy;
    this.size = size;
    this.apply(size);
    view.scrollLeft = Math.max(0, left);
    view.scrollTop = Math.max(0, top);
    view.classList.toggle("zoomed", size > this.fitSize);
    if (this.status) {
      this.status.textContent = size < TAP_SIZE
        ? "Whole hall. Zoom in (+ or pinch) to tap seats easily."
        : `Seats ${size} px. Drag to move around the hall.`;
    }
  }

  onTouchStart(event) {
    if (event.touches.length === 2) this.pinch = { distance: spread(event.touches), size: this.size };
  }

  onTouchMove(event) {
    if (!this.pinch || event.touches.length !== 2) return;
    event.preventDefault(); // two fingers zoom the map, not the page
    const [a, b] = event.touches;
    const box = this.viewport.getBoundingClientRect();
    const midX = (a.clientX + b.clientX) / 2 - box.left;
    const midY = (a.clientY + b.clientY) / 2 - box.top;
    this.set(this.pinch.size * (spread(event.touches) / this.pinch.distance), midX, midY);
  }

  onTouchEnd(event) {
    if (event.touches.length < 2) this.pinch = null;
  }
}

function spread(touches) {
  const [a, b] = touches;
  return Math.hypot(a.clientX - b.clientX, a.clientY - b.clientY) || 1;
}
