// The detail panel: one filter / channel / probe image large, with its facts and a filmstrip
// of the same item across every logged epoch. Opened by clicking a card.

import { itemCount, itemFacts, itemName, itemProbe, nearestStepIndex } from './model.js';
import * as V from './views.js';

/**
 * Controls the page's <dialog>. The app provides panes, state, ctx(pane), store,
 * paintInto(canvas, pane, index, step, owner), setEpoch(step) and optionsSignature().
 *
 * @example
 *   const detail = new Detail(app);
 *   detail.open(0, 5);  // item 5 of the first pane
 */
export class Detail {
  constructor(app) {
    this.app = app;
    this.dialog = app.ui.dialog;
    this.current = null;
    this.dialog.addEventListener('close', () => this.onClose());
  }

  get isOpen() {
    return this.current !== null;
  }

  /** Show item `item` of pane `paneIndex`; focus returns to `returnFocus` on close. */
  open(paneIndex, item, returnFocus = null) {
    this.current = { pane: paneIndex, item, returnFocus };
    this.render();
    if (!this.dialog.open) this.dialog.showModal();
    return this.paint();
  }

  pane() {
    return this.current ? this.app.panes[this.current.pane] : null;
  }

  /** After the panes were rebuilt: close if the pane is gone, rebuild if epochs changed. */
  sync() {
    if (!this.current) return;
    const pane = this.pane();
    if (!pane?.steps) this.dialog.close();
    else if (pane.steps.length !== this.current.view.frames.length) this.render();
  }

  render() {
    const current = this.current;
    const pane = this.pane();
    if (!pane?.steps) {
      this.dialog.close();
      return;
    }
    const count = () => itemCount(pane.family, pane.step || pane.steps.at(-1), this.app.state);
    current.item = Math.min(current.item, count() - 1);
    current.view = V.buildDetail(
      {
        close: () => this.dialog.close(),
        item: (delta) => {
          current.item = (current.item + delta + count()) % count();
          this.paint();
        },
        pick: (index) => this.app.setEpoch(pane.steps[index].step),
      },
      pane.steps,
      pane.family !== 'filter_patterns' && pane.probeUrls.length > 0,
    );
    const strip = current.view.element.querySelector('.filmstrip');
    current.observer?.disconnect();
    current.observer = new IntersectionObserver(
      (entries) => {
        for (const entry of entries) if (entry.isIntersecting) this.paintFrame(entry.target.frameRef);
      },
      { root: strip, rootMargin: '0px 200px' },
    );
    for (const frame of current.view.frames) {
      frame.button.frameRef = frame;
      current.observer.observe(frame.button);
    }
    this.dialog.replaceChildren(current.view.element);
  }

  /** Draw a filmstrip frame unless it already shows this item with these options. */
  paintFrame(frame) {
    const pane = this.pane();
    if (!pane || !frame) return;
    const want = JSON.stringify([this.current.item, this.app.optionsSignature()]);
    if (frame.painted === want) return;
    frame.painted = want;
    this.app.paintInto(frame.canvas, pane, this.current.item, pane.steps[frame.index], frame);
  }

  /** Redraw the large view, facts and filmstrip at the current epoch. */
  async paint() {
    const pane = this.pane();
    if (!pane?.steps) return;
    const { item, view } = this.current;
    const index = nearestStepIndex(pane.steps, this.app.state.epoch ?? 0);
    const step = pane.steps[index];
    const ctx = this.app.ctx(pane);
    view.title.textContent = itemName(pane.family, item, step, ctx);
    view.subtitle.textContent = `${pane.run.name} · ${pane.layer.name} · ${pane.view.label}`;
    view.epoch.textContent = `Epoch ${step.step}`;
    V.setFacts(view.facts, itemFacts(pane.family, item, step, ctx));
    for (const frame of view.frames) {
      const current = frame.index === index;
      frame.button.setAttribute('aria-current', String(current));
      if (current && frame.button.isConnected) frame.button.scrollIntoView({ block: 'nearest', inline: 'nearest' });
      if (frame.button.isConnected && V.onScreen(frame.button)) this.paintFrame(frame);
    }
    const jobs = [this.app.paintInto(view.big, pane, item, step, view)];
    const probeUrl = pane.probeUrls[itemProbe(pane.family, item, step, ctx)];
    if (view.probe && probeUrl) {
      jobs.push(this.app.store.bitmap(probeUrl).then((bitmap) => V.paintBitmap(view.probe, bitmap)));
    }
    await Promise.all(jobs);
  }

  onClose() {
    const focus = this.current?.returnFocus;
    this.current?.observer?.disconnect();
    this.current = null;
    if (focus?.isConnected) focus.focus();
  }
}
