// The detail panel: one filter / channel / probe image large, with its facts, the filter's
// top-activating examples (when logged) and a filmstrip of the same item across every
// logged epoch, which it saves as an animated PNG or a contact sheet (item_export.js).
// Opened by clicking a card. The item is followed by what it is (the family's
// itemKey: a channel, filter or probe), not by its place, which may differ between epochs;
// an epoch that does not hold it shows an empty frame that says so.

import { h, onScreen, setFacts } from './dom.js';
import { shortName } from './format.js';
import { animation, contactSheet, download, exportName } from './item_export.js';
import { nearestStepIndex, readableTag } from './model.js';
import { paintBitmap, paintMissing } from './paint.js';
import { nextItem, visibleItems } from './subset.js';
import { buildSection, paintSection } from './top_examples.js';

/**
 * The detail dialog's content: a large view, the probe, the facts, the top examples and a
 * filmstrip.
 *
 * @param {object} on handlers: close(), item(delta), pick(stepIndex), save(what) ('animation'
 *     or 'sheet').
 * @param {Array<object>} steps every step of the series (one filmstrip frame each).
 * @param {{probe: boolean, top: boolean, big: boolean}} parts whether to show the probe image
 *     beside the large view, a top-examples section, and the large view (the top-examples
 *     view shows its section in that place instead).
 * @returns {object} references: element, title, subtitle, big, probe, facts, epoch, note,
 *     top, more (the family's detailRow: element, title, note, figures), frames, saved (the
 *     exports' status line).
 */
function buildDetail(on, steps, parts) {
  const title = h('h2', { class: 'detail-title' });
  const subtitle = h('p', { class: 'detail-subtitle' });
  const big = h('canvas', { width: 1, height: 1, class: 'big' });
  const probe = parts.probe ? h('canvas', { width: 1, height: 1, class: 'probe-canvas' }) : null;
  const facts = h('dl', { class: 'facts' });
  const epoch = h('p', { class: 'detail-epoch' });
  const note = h('p', { class: 'detail-note', hidden: true });
  const top = parts.top ? buildSection() : null;
  const more = {
    title: h('h3'), note: h('p', { class: 'detail-more-note' }), figures: h('div', { class: 'detail-more-figures' }),
  };
  more.element = h('section', { class: 'detail-more', hidden: true }, more.title, more.note, more.figures);
  const frames = steps.map((step, index) => {
    const canvas = h('canvas', { width: 1, height: 1 });
    const button = h(
      'button',
      {
        class: 'frame-button',
        attrs: { 'aria-label': `Epoch ${step.step}`, 'aria-current': 'false' },
        dataset: { step: step.step },
        on: { click: () => on.pick(index) },
      },
      h('div', { class: 'frame pending' }, canvas),
      h('span', { text: `${step.step}` }),
    );
    return { button, canvas, index };
  });
  const button = (text, label, click) =>
    h('button', { class: 'icon-button', text, title: label, attrs: { 'aria-label': label }, on: { click } });
  const saved = h('span', { class: 'export-status', attrs: { role: 'status', 'aria-live': 'polite' } });
  const save = (text, what, hint) =>
    h('button', { class: 'export-button', text, title: hint, dataset: { export: what }, on: { click: () => on.save(what) } });
  const probeFigure = probe
    ? h('figure', { class: 'probe-figure' }, h('div', { class: 'frame' }, probe), h('figcaption', { text: 'Probe image' }))
    : null;
  const main = parts.big || !top ? h('figure', { class: 'frame big-frame' }, big) : top.element;
  const element = h(
    'div',
    { class: `detail-body${top ? ' with-top' : ''}${parts.big ? '' : ' top-main'}` },
    h(
      'header',
      { class: 'detail-head' },
      h('div', {}, title, subtitle),
      h('div', { class: 'spacer' }),
      button('‹', 'Previous item', () => on.item(-1)),
      button('›', 'Next item', () => on.item(1)),
      button('✕', 'Close', () => on.close()),
    ),
    h(
      'div',
      { class: 'detail-main' },
      main,
      h(
        'div',
        { class: 'detail-side' },
        epoch,
        note,
        h('div', { class: 'detail-facts' }, facts, probeFigure),
        top && main !== top.element ? top.element : null,
      ),
    ),
    more.element,
    h(
      'section',
      { class: 'filmstrip-section', attrs: { 'aria-label': 'Every logged epoch' } },
      h(
        'div',
        { class: 'filmstrip-head' },
        h('h3', { text: 'Across epochs' }),
        save('Save animation', 'animation', 'Save every epoch as an animated PNG, as drawn now'),
        save('Save contact sheet', 'sheet', 'Save every epoch in one PNG, each with its epoch, as drawn now'),
        saved,
      ),
      h('div', { class: 'filmstrip' }, frames.map((frame) => frame.button)),
    ),
  );
  return { element, title, subtitle, big, probe, facts, epoch, note, top, more, frames, saved };
}

/**
 * Controls the page's <dialog>; what it shows of an item is its view's family's.
 *
 * @example
 *   const detail = new Detail(app);  // app: the AppInterface (index.js)
 *   detail.open(0, 5);  // item 5 of the first pane
 */
export class Detail {
  /** @param {AppInterface} app the page's interface; the Detail uses nothing else of it. */
  constructor(app) {
    this.app = app;
    this.dialog = app.ui.dialog;
    this.current = null;
    this.dialog.addEventListener('close', () => this.onClose());
  }

  get isOpen() {
    return this.current !== null;
  }

  /** Show item `item` of pane `paneIndex` (at the epoch shown); focus returns to `returnFocus` on close. */
  open(paneIndex, item, returnFocus = null) {
    this.current = { pane: paneIndex, returnFocus };
    const pane = this.pane();
    if (pane?.steps) this.follow(item, this.stepShown(pane));
    this.render();
    if (!this.dialog.open) this.dialog.showModal();
    return this.paint();
  }

  pane() {
    return this.current ? this.app.panes[this.current.pane] : null;
  }

  /** The step of a pane at the epoch chosen. */
  stepShown(pane) {
    return pane.steps[nearestStepIndex(pane.steps, this.app.state.epoch ?? pane.steps.at(-1).step)];
  }

  /** Follow item i of `step` from now on: remember what it is, its name and its filter. */
  follow(i, step) {
    const pane = this.pane();
    const ctx = this.app.ctx(pane);
    const { family } = pane;
    Object.assign(this.current, {
      key: family.itemKey(i, step, ctx),
      name: family.itemName(i, step, ctx),
      filter: family.filter(i, step),
    });
  }

  /** Where the followed item is in `step`, or -1 if the step does not hold it. */
  indexIn(step) {
    const pane = this.pane();
    const ctx = this.app.ctx(pane);
    const count = pane.family.count(step, ctx);
    for (let i = 0; i < count; i++) if (pane.family.itemKey(i, step, ctx) === this.current.key) return i;
    return -1;
  }

  /** Move to the previous (-1) or next (+1) item shown (the probe filter and class chosen). */
  moveItem(delta) {
    const pane = this.pane();
    if (!pane?.steps) return;
    const step = this.stepShown(pane);
    const shown = visibleItems(pane, step, this.app.ctx(pane));
    if (!shown.length) return;
    const at = this.indexIn(step);
    this.follow(nextItem(shown, at < 0 ? shown[0] : at, at < 0 ? 0 : delta), step);
    this.paint();
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
    const { family } = pane;
    if (current.key === undefined) this.follow(0, this.stepShown(pane));
    current.view = buildDetail(
      {
        close: () => this.dialog.close(),
        item: (delta) => this.moveItem(delta),
        pick: (index) => this.app.setEpoch(pane.steps[index].step),
        save: (what) => this.save(what),
      },
      pane.steps,
      {
        probe: family.layout.detailProbe && pane.probeUrls.length > 0,
        top: family.layout.detailTop && readableTag(pane.layer, 'top_examples') !== null,
        big: family.layout.detailBig,
      },
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
    if (!pane?.steps || !frame) return;
    const want = JSON.stringify([this.current.key, this.app.optionsSignature()]);
    if (frame.painted === want) return;
    frame.painted = want;
    const step = pane.steps[frame.index];
    const item = this.indexIn(step);
    const label = `Epoch ${step.step}${item < 0 ? `: ${this.current.name} not stored` : ''}`;
    frame.button.setAttribute('aria-label', label);
    frame.button.title = item < 0 ? `${this.current.name} was not stored at epoch ${step.step}` : '';
    if (item >= 0) {
      this.app.paintInto(frame.canvas, pane, item, step, frame);
      return;
    }
    frame.key = {}; // a paint of another item still in flight must not land here
    paintMissing(frame.canvas);
  }

  /** Redraw the large view, facts, top examples and filmstrip at the current epoch. */
  async paint() {
    const pane = this.pane();
    if (!pane?.steps) return;
    const { view, name } = this.current;
    const epoch = this.app.state.epoch ?? pane.steps.at(-1).step;
    const index = nearestStepIndex(pane.steps, epoch);
    const step = pane.steps[index];
    const ctx = this.app.ctx(pane);
    const { family } = pane;
    const item = this.indexIn(step);
    view.title.textContent = name;
    view.subtitle.textContent = `${pane.run.name} · ${shortName(pane.layer.name, 80)} · ${pane.view.label}`;
    view.subtitle.title = pane.layer.name;
    view.epoch.textContent = `Epoch ${step.step}`;
    const empty = item < 0 ? '' : family.caption(item, step, ctx).empty || '';
    view.note.hidden = item >= 0 && !empty;
    view.note.textContent = item < 0 ? `${name} was not stored at this epoch.` : empty;
    setFacts(view.facts, item < 0 ? [] : family.facts(item, step, ctx));
    for (const frame of view.frames) {
      const current = frame.index === index;
      frame.button.setAttribute('aria-current', String(current));
      if (current && frame.button.isConnected) frame.button.scrollIntoView({ block: 'nearest', inline: 'nearest' });
      if (frame.button.isConnected && onScreen(frame.button)) this.paintFrame(frame);
    }
    const jobs = [];
    if (view.big.isConnected && item >= 0) jobs.push(this.app.paintInto(view.big, pane, item, step, view));
    else if (view.big.isConnected) {
      view.key = {};
      paintMissing(view.big);
    }
    const probeUrl = item < 0 ? null : pane.probeUrls[family.probe(item, step, ctx)];
    if (view.probe && probeUrl) {
      jobs.push(this.app.store.bitmap(probeUrl).then((bitmap) => paintBitmap(view.probe, bitmap)));
    }
    jobs.push(this.paintMore(view, item < 0 ? null : family, item, step, ctx));
    if (view.top) {
      const where = { store: this.app.store, run: pane.run.name, tag: readableTag(pane.layer, 'top_examples') };
      const filter = this.current.filter;
      jobs.push(paintSection(view.top, { ...where, filter, epoch }).catch((err) => {
        view.top.note.textContent = `Could not load the top examples: ${err.message}`;
      }));
    }
    await Promise.all(jobs);
  }

  /** The family's row of more images of the item (its detailRow), hidden when it has none. */
  async paintMore(view, family, item, step, ctx) {
    const key = {};
    view.more.key = key;
    const row = family ? await family.detailRow(item, step, ctx, this.app.store).catch(() => null) : null;
    if (view.more.key !== key) return;
    view.more.element.hidden = !row;
    view.more.title.textContent = row ? row.title : '';
    view.more.note.textContent = row ? row.note : '';
    view.more.note.hidden = !row?.note;
    view.more.figures.replaceChildren(...(row ? row.figures : []).map((figure) => {
      const canvas = h('canvas', { width: 1, height: 1 });
      figure.draw(canvas);
      return h('figure', { class: 'detail-more-figure', title: figure.hint },
        h('div', { class: 'frame' }, canvas), h('figcaption', { text: figure.caption }));
    }));
  }

  /** Save the item across every epoch: 'animation' (animated PNG) or 'sheet' (contact sheet). */
  async save(what) {
    const pane = this.pane();
    if (!pane?.steps) return;
    const { view } = this.current;
    const ctx = this.app.ctx(pane);
    const names = { run: pane.run.name, layer: pane.layer.name, kind: pane.view.kind, item: this.current.name };
    const buttons = [...view.element.querySelectorAll('.export-button')];
    buttons.forEach((button) => { button.disabled = true; });
    view.saved.textContent = 'Drawing every epoch…';
    const item = (step) => this.indexIn(step); // the followed item's place at each epoch
    try {
      const title = `${pane.run.name} · ${pane.layer.name} · ${pane.view.label} · ${this.current.name}`;
      const blob = what === 'sheet'
        ? await contactSheet(pane, item, ctx, this.app.store, title)
        : await animation(pane, item, ctx, this.app.store);
      const name = exportName(names, what === 'sheet' ? '_sheet' : '');
      download(this.app.doc, blob, name);
      view.saved.textContent = `Saved ${name}`;
    } catch (err) {
      view.saved.textContent = `Could not save: ${err.message}`;
    } finally {
      buttons.forEach((button) => { button.disabled = false; });
    }
  }

  onClose() {
    const focus = this.current?.returnFocus;
    this.current?.observer?.disconnect();
    this.current = null;
    if (focus?.isConnected) focus.focus();
  }
}
