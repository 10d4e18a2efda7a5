// The tab bar: one panel shown at a time, kept in the URL's hash (#generate, #edit, ...).

export class Tabs extends EventTarget {
  /** @param {HTMLElement} bar the role=tablist element */
  constructor(bar) {
    super();
    this.buttons = [...bar.querySelectorAll('[role="tab"]')];
    this.current = null;
    for (const button of this.buttons) {
      button.addEventListener("click", () => this.show(button.dataset.tab, { focus: false }));
    }
    bar.addEventListener("keydown", (event) => this._arrows(event));
    window.addEventListener("hashchange", () => this.show(this._fromHash()));
    this.show(this._fromHash() || this.buttons[0].dataset.tab);
  }

  /** Show the tab named `name` (e.g. "edit"). */
  show(name, { focus = false } = {}) {
    const button = this.buttons.find((b) => b.dataset.tab === name);
    if (!button || this.current === name) return;
    for (const other of this.buttons) {
      const selected = other === button;
      other.setAttribute("aria-selected", String(selected));
      other.tabIndex = selected ? 0 : -1;
      document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
    }
    this.current = name;
    if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
    if (focus) button.focus();
    this.dispatchEvent(new CustomEvent("change", { detail: name }));
  }

  _fromHash() {
    const name = location.hash.slice(1);
    return this.buttons.some((b) => b.dataset.tab === name) ? name : null;
  }

  _arrows(event) {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (!step) return;
    const index = this.buttons.findIndex((b) => b.dataset.tab === this.current);
    const next = this.buttons[(index + step + this.buttons.length) % this.buttons.length];
    this.show(next.dataset.tab, { focus: true });
  }
}
