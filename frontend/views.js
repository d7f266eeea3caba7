// The dashboard's DOM: page skeleton, run and layer selectors, view tabs, cards, messages
// and the line that introduces a view. (The options row is options.js; the detail dialog is
// detail.js.) Names from the data reach the page as text only (see dom.js).

import { field, h } from './dom.js';
import { shortName } from './format.js';
import { shapeText } from './model.js';

/**
 * Build the page skeleton once.
 *
 * @param {object} on handlers: run(name), compare(name), kind(kind), epochIndex(i), play(),
 *     step(delta), refresh().
 * @returns {object} references to the parts that change later.
 */
export function buildShell(on) {
  const runSelect = h('select', { on: { change: (e) => on.run(e.target.value) } });
  const compareSelect = h('select', { on: { change: (e) => on.compare(e.target.value) } });
  const status = h('span', { class: 'status', attrs: { role: 'status', 'aria-live': 'polite' } });
  const refresh = h('button', {
    class: 'icon-button',
    text: '⟳',
    title: 'Check for new epochs now',
    attrs: { 'aria-label': 'Check for new epochs now' },
    on: { click: () => on.refresh() },
  });
  const tabs = h('div', { class: 'tabs', attrs: { role: 'tablist', 'aria-label': 'View' } });
  const methods = h('div', { class: 'methods', hidden: true, attrs: { role: 'tablist', 'aria-label': 'Method' } });
  const layerTools = h('div', { class: 'layer-tools' });
  const layerList = h('ul', { class: 'layer-list', attrs: { 'aria-label': 'Layers' } });
  const ticks = h('datalist', { id: 'cv-epoch-ticks' });
  const slider = h('input', {
    type: 'range',
    attrs: { list: 'cv-epoch-ticks' },
    min: 0,
    max: 0,
    step: 1,
    value: 0,
    class: 'epoch-slider',
    on: { input: (e) => on.epochIndex(Number(e.target.value)) },
  });
  const play = h('button', {
    class: 'play',
    text: '▶',
    title: 'Play the epochs (space)',
    attrs: { 'aria-label': 'Play the epochs' },
    on: { click: () => on.play() },
  });
  const prev = h('button', {
    class: 'icon-button',
    text: '‹',
    title: 'Previous epoch (←)',
    attrs: { 'aria-label': 'Previous epoch' },
    on: { click: () => on.step(-1) },
  });
  const next = h('button', {
    class: 'icon-button',
    text: '›',
    title: 'Next epoch (→)',
    attrs: { 'aria-label': 'Next epoch' },
    on: { click: () => on.step(1) },
  });
  const epochValue = h('span', { class: 'epoch-value', text: '–' });
  const epochRange = h('span', { class: 'epoch-range' });
  const epochNote = h('span', { class: 'epoch-note' });
  const options = h('div', { class: 'options' });
  const intro = h('p', { class: 'view-intro' });
  const panesHost = h('div', { class: 'panes-host' });
  const content = h('div', { class: 'content' }, intro, panesHost);
  const dialog = h('dialog', { class: 'detail', attrs: { 'aria-label': 'Details' } });
  const epochBar = h(
    'div',
    { class: 'epoch-bar' },
    play,
    prev,
    field('Epoch', slider, ticks),
    next,
    h('div', { class: 'epoch-readout' }, h('span', { class: 'epoch-caption', text: 'Epoch' }), epochValue, epochRange),
    epochNote,
  );
  const header = h(
    'header',
    { class: 'topbar' },
    h('div', { class: 'run-fields' }, field('Run', runSelect), field('Compare with', compareSelect)),
    h('div', { class: 'spacer' }),
    status,
    refresh,
  );
  const main = h('main', { class: 'main' }, tabs, methods, epochBar, options, content);
  const aside = h('nav', { class: 'sidebar', attrs: { 'aria-label': 'Layers' } }, h('h2', { text: 'Layers' }), layerTools, layerList);
  const body = h('div', { class: 'body' }, aside, main);
  const root = h('div', { class: 'cnnvis' }, header, body, dialog);
  return {
    root, runSelect, compareSelect, status, tabs, methods, layerTools, layerList, slider, ticks, play, prev, next,
    epochValue, epochRange, epochNote, epochBar, options, content, intro, panesHost, dialog,
  };
}

/** Fill a <select> with run names (as text), keeping `value` selected. */
export function setRunOptions(select, names, value, noneLabel = null) {
  const options = [];
  if (noneLabel) options.push(h('option', { value: '', text: noneLabel }));
  for (const name of names) options.push(h('option', { value: name, text: name }));
  select.replaceChildren(...options);
  select.value = value ?? '';
}

/**
 * The view tabs, one per family of the run's views, and under them the methods of the
 * family shown (a choice offered when it has more than one). A family that the layer lacks
 * is marked, unless a single layer has it (the input of the attributions): its tab goes
 * there from any layer, and its tooltip says where.
 *
 * @param {HTMLElement} tabs the family tabs' container.
 * @param {HTMLElement} methods the methods' container.
 * @param {Array<object>} groups model.js viewFamilies(run).
 * @param {string} active the kind shown.
 * @param {Set<string>} here the kinds logged at the layer shown.
 * @param {{family: function(object): void, kind: function(string): void}} on what a click
 *     on a family tab (its group) and on a method (its kind) does.
 */
export function setTabs(tabs, methods, groups, active, here, on) {
  const current = groups.find((group) => group.views.some((view) => view.kind === active)) || groups[0];
  tabs.replaceChildren(...groups.map((group) => {
    const present = group.views.some((view) => here.has(view.kind));
    const elsewhere = !present && group.layers.length === 1;
    const names = group.views.map((view) => view.label).join(', ');
    let title = `${group.family.label}: ${names}`;
    if (elsewhere) title += ` (at ${group.layers[0]})`;
    else if (!present) title += ' (not logged for this layer)';
    return h('button', {
      class: `tab${present || elsewhere ? '' : ' missing'}`,
      text: group.family.label,
      title,
      attrs: { role: 'tab', 'aria-selected': String(group === current) },
      dataset: { family: group.family.name, kinds: group.views.map((view) => view.kind).join(' ') },
      on: { click: () => on.family(group) },
    });
  }));
  const choices = current && current.views.length > 1 ? current.views : [];
  methods.hidden = choices.length === 0;
  methods.replaceChildren(
    ...(choices.length ? [h('span', { class: 'field-label', text: 'Method' })] : []),
    ...choices.map((view) =>
      h('button', {
        class: `method${here.has(view.kind) ? '' : ' missing'}`,
        text: view.label,
        title: here.has(view.kind) ? view.blurb : `${view.label}: not logged for this layer`,
        attrs: { role: 'tab', 'aria-selected': String(view.kind === active) },
        dataset: { kind: view.kind },
        on: { click: () => on.kind(view.kind) },
      })),
  );
}

/** A centred message ('info', 'error' or 'empty'): title, text and optional extra nodes. */
export function message(tone, title, text, ...extra) {
  return h(
    'div',
    { class: `message ${tone}`, attrs: tone === 'error' ? { role: 'alert' } : {} },
    h('h3', { text: title }),
    text ? h('p', { text }) : null,
    ...extra,
  );
}

/** What to show when no run has cnnvis data: how to add the callback. */
export function emptyState() {
  const snippet = [
    'from tb_cnnvis import CnnVisCallback',
    'cnnvis = CnnVisCallback("logs", x_val[:8], y_val[:8], class_names=names)',
    'model.fit(x, y, epochs=10, callbacks=[cnnvis])',
  ].join('\n');
  return message(
    'empty',
    'No CNN visualizations logged yet',
    'Add the callback to model.fit, with a few images to probe the network with:',
    h('pre', {}, h('code', { text: snippet })),
    h('p', {
      class: 'hint',
      text: 'Run TensorBoard on the same log directory (tensorboard --logdir logs). ' +
        'Each epoch shows up here as soon as it is written; this page checks every few seconds.',
    }),
  );
}

/** Skeleton cards shown while a view's data loads. */
export function loadingState(text, count, size) {
  const grid = h('div', { class: 'grid', style: { '--tile': `${size}px` } });
  for (let i = 0; i < Math.min(count || 8, 24); i++) grid.append(h('div', { class: 'card skeleton' }));
  return h('div', { class: 'loading', attrs: { 'aria-busy': 'true' } }, h('p', { class: 'hint', text }), grid);
}

/**
 * A grid of clickable cards, each a canvas with a caption.
 *
 * @param {number} count number of cards.
 * @param {number} size displayed canvas size in CSS pixels.
 * @param {Function} label label(i) -> accessible name of card i.
 * @param {Function} onOpen onOpen(i) when card i is activated.
 * @param {{inset: boolean, wide: boolean}} options `inset`: add a small canvas to the caption
 *     (the probe of a projection); `wide`: cards two columns wide (top examples).
 * @returns {{element: HTMLElement, cards: Array<{button, canvas, inset, badge, tag, empty,
 *     title, note, meta}>}} `badge`: the pointing game's mark; `tag`: the caption's corner
 *     word; `empty`: a sentence over the image when it shows nothing (Caption.empty).
 */
export function buildGrid(count, size, label, onOpen, { inset = false, wide = false } = {}) {
  const grid = h('div', { class: `grid${wide ? ' wide' : ''}`, style: { '--tile': `${size}px` } });
  const cards = [];
  for (let i = 0; i < count; i++) {
    const canvas = h('canvas', { width: 1, height: 1 });
    const small = inset ? h('canvas', { width: 1, height: 1, class: 'inset' }) : null;
    const badge = h('span', { class: 'point-badge', hidden: true });
    const tag = h('span', { class: 'card-tag', hidden: true });
    const empty = h('span', { class: 'card-empty', hidden: true });
    const title = h('span', { class: 'card-title' });
    const note = h('span', { class: 'card-note' });
    const meta = h('span', { class: 'card-meta' });
    const button = h(
      'button',
      { class: 'card', attrs: { 'aria-label': label(i) }, dataset: { index: i }, on: { click: () => onOpen(i) } },
      h('div', { class: 'frame pending' }, canvas, badge, tag, empty),
      h('div', { class: 'caption' }, small, h('div', { class: 'caption-text' }, h('div', { class: 'card-head' }, title, note), meta)),
    );
    grid.append(button);
    cards.push({ button, canvas, inset: small, badge, tag, empty, title, note, meta, index: i });
  }
  return { element: grid, cards };
}

/**
 * The line above the cards: which view of which layer, and what it shows.
 *
 * @param {object} pane the first pane ({view, family, layer, run, probeLabels, steps}).
 * @param {object} state the page state.
 * @param {boolean} [own] add what the pane's own steps store (the family's intro); when
 *     runs are compared, each pane's head says it instead (paneIntro).
 * @returns {Array<Node|string>} nodes for the intro paragraph.
 */
export function viewIntro(pane, state, own = true) {
  if (!pane?.view) return [];
  const parts = [h('strong', { text: pane.view.label })];
  if (pane.layer) {
    const shape = shapeText(pane.layer.outputShape);
    const name = shortName(pane.layer.name, 80);
    parts.push(' · ', h('span', { class: 'intro-layer', text: name, title: pane.layer.name }), shape ? ` (${shape})` : '');
  }
  const more = own ? paneIntro(pane, state) : '';
  parts.push(h('span', { class: 'intro-text', text: ` — ${[pane.view.blurb, more].filter(Boolean).join(' ')}` }));
  return parts;
}

/**
 * What one pane's steps store, in words (the family's intro: a preset, a canvas, a subset
 * of channels), or '' when its family says nothing more.
 *
 * @param {object} pane a pane with a view.
 * @param {object} state the page state.
 * @returns {string}
 */
export function paneIntro(pane, state) {
  return pane?.family?.intro && pane.steps ? pane.family.intro(pane, state) : '';
}
