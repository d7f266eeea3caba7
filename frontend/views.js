// The dashboard's DOM: page skeleton, controls, cards, states and canvas painters.
//
// Every name that comes from the data (runs, tags, layers, classes) reaches the page as a
// text node or textContent; this module never assigns innerHTML.

import { amplify, COLORMAP_NAMES, colorize, cssGradient, lookupTable, overlay } from './colormaps.js';
import { className, imageIndexForProbe, itemProbe, remapFor, shapeText, tileGray, tileRect } from './model.js';

/**
 * Create an element. Strings among the children become text nodes.
 *
 * @param {string} tag element name.
 * @param {object} props `class`, `text` (textContent), `attrs` (setAttribute), `on` (event
 *     listeners), `style`, `dataset`; any other key is assigned as a property.
 * @param {...(Node|string|null)} children appended in order; null and false are skipped.
 * @returns {HTMLElement}
 * @example h('button', {class: 'chip', on: {click}}, 'conv1')
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'attrs') for (const [k, v] of Object.entries(value)) node.setAttribute(k, v);
    else if (key === 'on') for (const [k, v] of Object.entries(value)) node.addEventListener(k, v);
    else if (key === 'style') Object.assign(node.style, value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node[key] = value;
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

let uid = 0;

/** A labelled control: <label for=id>text</label> followed by the control. */
function field(text, control, extra = null) {
  control.id = control.id || `cv-${++uid}`;
  return h('div', { class: 'field' }, h('label', { htmlFor: control.id, text }), control, extra);
}

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
  const main = h('main', { class: 'main' }, tabs, epochBar, options, content);
  const aside = h('nav', { class: 'sidebar', attrs: { 'aria-label': 'Layers' } }, h('h2', { text: 'Layers' }), layerList);
  const body = h('div', { class: 'body' }, aside, main);
  const root = h('div', { class: 'cnnvis' }, header, body, dialog);
  return {
    root, runSelect, compareSelect, status, tabs, layerList, slider, ticks, play, prev, next,
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

/** The view tabs: one per logged kind; kinds the layer lacks are marked. */
export function setTabs(container, views, active, layerKinds, onSelect) {
  container.replaceChildren(
    ...views.map((view) =>
      h('button', {
        class: `tab${layerKinds.has(view.kind) ? '' : ' missing'}`,
        text: view.label,
        title: layerKinds.has(view.kind) ? view.label : `${view.label}: not logged for this layer`,
        attrs: { role: 'tab', 'aria-selected': String(view.kind === active) },
        dataset: { kind: view.kind },
        on: { click: () => onSelect(view.kind) },
      }),
    ),
  );
}

/** The layer list, in model order; layers without the current view are dimmed. */
export function setLayers(list, layers, active, kind, onSelect) {
  list.replaceChildren(
    ...layers.map((layer) =>
      h(
        'li',
        {},
        h(
          'button',
          {
            class: `layer${layer.tags.has(kind) ? '' : ' missing'}`,
            attrs: { 'aria-current': String(layer.name === active) },
            dataset: { layer: layer.name },
            on: { click: () => onSelect(layer.name) },
          },
          h('span', { class: 'layer-name', text: layer.name }),
          h('span', { class: 'layer-meta', text: [layer.layerClass, shapeText(layer.outputShape)].filter(Boolean).join(' · ') }),
        ),
      ),
    ),
  );
}

/** A select of colormaps with a gradient legend. */
function colormapField(value, onChange) {
  const legend = h('span', { class: 'legend', style: { background: cssGradient(value) } });
  const select = h(
    'select',
    { on: { change: (e) => onChange(e.target.value) } },
    COLORMAP_NAMES.map((name) => h('option', { value: name, text: name })),
  );
  select.value = value;
  return field('Colormap', select, legend);
}

/** A labelled range input with its value shown beside it. */
function rangeField(text, value, { min, max, step }, onInput, show = (v) => `${Math.round(v * 100)}%`) {
  const output = h('output', { text: show(value) });
  const input = h('input', {
    type: 'range',
    min,
    max,
    step,
    value,
    on: {
      input: (e) => {
        output.textContent = show(Number(e.target.value));
        onInput(Number(e.target.value));
      },
    },
  });
  return field(text, input, output);
}

/** Two or more mutually exclusive buttons (aria-pressed). */
function segmented(text, choices, value, onChange) {
  const group = h('div', { class: 'segmented', attrs: { role: 'group', 'aria-label': text } });
  for (const [key, label] of choices) {
    group.append(
      h('button', {
        text: label,
        attrs: { 'aria-pressed': String(key === value) },
        dataset: { value: key },
        on: { click: () => onChange(key) },
      }),
    );
  }
  return h('div', { class: 'field' }, h('span', { class: 'field-label', text }), group);
}

/**
 * The options row of a view family.
 *
 * @param {HTMLElement} container the options element.
 * @param {string} family 'feature_maps' | 'filter_patterns' | 'cam' | 'projection'.
 * @param {object} state the page's state (colormaps, opacity, threshold, scaling, size).
 * @param {Function} set set(key, value) updates the state and repaints.
 * @param {HTMLElement|null} probePicker the probe chooser (feature maps), if any.
 */
export function setOptions(container, family, state, set, probePicker = null) {
  const parts = [];
  if (probePicker) parts.push(probePicker);
  if (family === 'feature_maps') {
    parts.push(
      segmented('Scaling', [['channel', 'Per channel'], ['layer', 'Per layer']], state.scaling, (v) =>
        set('scaling', v),
      ),
      colormapField(state.featureColormap, (v) => set('featureColormap', v)),
    );
  }
  if (family === 'projection') {
    parts.push(rangeField('Gain', state.gain, { min: 1, max: 8, step: 0.5 }, (v) => set('gain', v), (v) => `${v}×`));
  }
  if (family === 'cam') {
    parts.push(
      colormapField(state.camColormap, (v) => set('camColormap', v)),
      rangeField('Opacity', state.opacity, { min: 0, max: 1, step: 0.05 }, (v) => set('opacity', v)),
      rangeField('Threshold', state.threshold, { min: 0, max: 0.95, step: 0.05 }, (v) => set('threshold', v)),
    );
  }
  parts.push(
    rangeField('Size', state.size, { min: 64, max: 256, step: 16 }, (v) => set('size', v), (v) => `${v}px`),
  );
  container.replaceChildren(...parts);
}

/** The probe chooser: one small thumbnail button per probe image. */
export function probePicker(count, active, labelOf, onSelect) {
  const group = h('div', { class: 'probe-picker', attrs: { role: 'group', 'aria-label': 'Probe image' } });
  const canvases = [];
  for (let i = 0; i < count; i++) {
    const canvas = h('canvas', { width: 1, height: 1 });
    canvases.push(canvas);
    group.append(
      h(
        'button',
        {
          class: 'probe',
          title: `Probe ${i}${labelOf(i) ? ` (${labelOf(i)})` : ''}`,
          attrs: { 'aria-pressed': String(i === active), 'aria-label': `Probe ${i}` },
          on: { click: () => onSelect(i) },
        },
        canvas,
      ),
    );
  }
  return { element: h('div', { class: 'field' }, h('span', { class: 'field-label', text: 'Probe' }), group), canvases };
}

/** A centred message: title, text and optional extra nodes (buttons, code). */
export function message(kind, title, text, ...extra) {
  return h(
    'div',
    { class: `message ${kind}`, attrs: kind === 'error' ? { role: 'alert' } : {} },
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
 * @param {boolean} withInset add a small canvas to the caption (the probe of a projection).
 * @returns {{element: HTMLElement, cards: Array<{button, canvas, inset, title, meta}>}}
 */
export function buildGrid(count, size, label, onOpen, withInset = false) {
  const grid = h('div', { class: 'grid', style: { '--tile': `${size}px` } });
  const cards = [];
  for (let i = 0; i < count; i++) {
    const canvas = h('canvas', { width: 1, height: 1 });
    const inset = withInset ? h('canvas', { width: 1, height: 1, class: 'inset' }) : null;
    const title = h('span', { class: 'card-title' });
    const meta = h('span', { class: 'card-meta' });
    const button = h(
      'button',
      { class: 'card', attrs: { 'aria-label': label(i) }, dataset: { index: i }, on: { click: () => onOpen(i) } },
      h('div', { class: 'frame pending' }, canvas),
      h('div', { class: 'caption' }, inset, h('div', { class: 'caption-text' }, title, meta)),
    );
    grid.append(button);
    cards.push({ button, canvas, inset, title, meta, index: i });
  }
  return { element: grid, cards };
}

/** Resize a canvas's pixel buffer (not its CSS size) when needed; returns its 2-D context. */
function sized(canvas, width, height) {
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  return canvas.getContext('2d');
}

/** Draw tile `rect` of an atlas bitmap into a canvas at natural size. */
export function paintTile(canvas, bitmap, rect) {
  const context = sized(canvas, rect.w, rect.h);
  context.drawImage(bitmap, rect.x, rect.y, rect.w, rect.h, 0, 0, rect.w, rect.h);
}

/** Draw a whole bitmap into a canvas at natural size. */
export function paintBitmap(canvas, bitmap) {
  paintTile(canvas, bitmap, { x: 0, y: 0, w: bitmap.width, h: bitmap.height });
}

/** Draw intensities through a colormap table, remapped by {scale, offset}. */
export function paintGray(canvas, gray, width, height, table, remap) {
  const context = sized(canvas, width, height);
  const out = context.createImageData(width, height);
  colorize(gray, table, out, remap);
  context.putImageData(out, 0, 0);
}

/** Draw a heat map over an image (RGBA ImageData) with opacity and threshold. */
export function paintOverlay(canvas, base, heat, table, options) {
  const context = sized(canvas, base.width, base.height);
  const out = context.createImageData(base.width, base.height);
  overlay(base.data, heat.gray, table, out, options);
  context.putImageData(out, 0, 0);
}

/** Show a broken-image mark in a canvas that could not be painted. */
export function paintFailed(canvas) {
  sized(canvas, 1, 1).clearRect(0, 0, 1, 1);
  canvas.closest('.frame')?.classList.add('failed');
}

/**
 * Fetch (or take from the cache) what item i of a step needs to be drawn.
 *
 * @param {string} family a VIEWS family.
 * @param {number} i item index.
 * @param {object} step a step from Store.steps().
 * @param {object} ctx {probe, probeUrls, ...}.
 * @param {Store} store the page's store.
 * @returns {Promise<object>} the input of drawItem.
 */
export async function loadItem(family, i, step, ctx, store) {
  if (family === 'feature_maps') {
    const index = imageIndexForProbe(step.facts, ctx.probe);
    return { atlas: await store.gray(step.images[index]), desc: step.facts.images[index] };
  }
  if (family === 'filter_patterns') {
    return { bitmap: await store.bitmap(step.images[0]), desc: step.facts.images[0] };
  }
  if (family === 'cam') {
    const probeUrl = ctx.probeUrls[itemProbe(family, i, step, ctx)];
    const [base, heat] = await Promise.all([
      probeUrl ? store.rgba(probeUrl) : null,
      store.gray(step.images[i]),
    ]);
    return { base, heat };
  }
  const url = step.images[i];
  return ctx.gain > 1 ? { rgba: await store.rgba(url) } : { bitmap: await store.bitmap(url) };
}

/** Draw item i from loadItem's result with the page's current display options. */
export function drawItem(canvas, family, i, step, ctx, data) {
  if (family === 'feature_maps') {
    const rect = tileRect(data.desc, i);
    const gray = tileGray(data.atlas.gray, data.atlas.width, rect);
    const remap = remapFor(step.facts, ctx.probe, i, ctx.scaling);
    paintGray(canvas, gray, rect.w, rect.h, lookupTable(ctx.featureColormap), remap);
  } else if (family === 'filter_patterns') {
    paintTile(canvas, data.bitmap, tileRect(data.desc, i));
  } else if (family === 'cam') {
    const table = lookupTable(ctx.camColormap);
    const { base, heat } = data;
    if (base && base.width === heat.width && base.height === heat.height) {
      paintOverlay(canvas, base, heat, table, { opacity: ctx.opacity, threshold: ctx.threshold });
    } else {
      paintGray(canvas, heat.gray, heat.width, heat.height, table, { scale: 1, offset: 0 });
    }
  } else if (data.rgba) {
    const context = sized(canvas, data.rgba.width, data.rgba.height);
    const out = context.createImageData(data.rgba.width, data.rgba.height);
    amplify(data.rgba.data, ctx.gain, out);
    context.putImageData(out, 0, 0);
  } else {
    paintBitmap(canvas, data.bitmap);
  }
  canvas.closest('.frame')?.classList.remove('failed', 'pending');
}

/** Fill a <dl> with [label, text] rows. */
export function setFacts(list, rows) {
  list.replaceChildren(...rows.flatMap(([label, text]) => [h('dt', { text: label }), h('dd', { text })]));
}

/**
 * The detail dialog's content: a large view, the probe, the facts and a filmstrip.
 *
 * @param {object} on handlers: close(), item(delta), pick(stepIndex).
 * @param {Array<object>} steps every step of the series (one filmstrip frame each).
 * @param {boolean} withProbe whether to show the probe image beside the large view.
 * @returns {object} references: element, title, subtitle, big, probe, facts, frames.
 */
export function buildDetail(on, steps, withProbe) {
  const title = h('h2', { class: 'detail-title' });
  const subtitle = h('p', { class: 'detail-subtitle' });
  const big = h('canvas', { width: 1, height: 1, class: 'big' });
  const probe = withProbe ? h('canvas', { width: 1, height: 1, class: 'probe-canvas' }) : null;
  const facts = h('dl', { class: 'facts' });
  const epoch = h('p', { class: 'detail-epoch' });
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
  const element = h(
    'div',
    { class: 'detail-body' },
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
      h('figure', { class: 'frame big-frame' }, big),
      h(
        'div',
        { class: 'detail-side' },
        epoch,
        facts,
        probe ? h('figure', { class: 'probe-figure' }, h('div', { class: 'frame' }, probe), h('figcaption', { text: 'Probe image' })) : null,
      ),
    ),
    h(
      'section',
      { class: 'filmstrip-section', attrs: { 'aria-label': 'Every logged epoch' } },
      h('h3', { text: 'Across epochs' }),
      h('div', { class: 'filmstrip' }, frames.map((frame) => frame.button)),
    ),
  );
  return { element, title, subtitle, big, probe, facts, epoch, frames };
}

/** Whether an element is on screen or within 200 px of it (worth drawing now). */
export function onScreen(element) {
  const rect = element.getBoundingClientRect();
  return rect.width > 0 && rect.bottom > -200 && rect.top < window.innerHeight + 200;
}

/** Rebuild a container's children and give focus back to the control at the same place. */
export function keepFocus(container, rebuild) {
  const active = container.ownerDocument.activeElement;
  const focusable = () => [...container.querySelectorAll('button, select, input')];
  const index = container.contains(active) ? focusable().indexOf(active) : -1;
  rebuild();
  if (index >= 0) focusable()[index]?.focus();
}

/**
 * The line above the cards: which view of which layer, and what it shows.
 *
 * @param {object} pane the first pane ({view, layer, run, probeLabels}).
 * @param {object} state the page state (probe, scaling).
 * @returns {Array<Node>} nodes for the intro paragraph.
 */
export function viewIntro(pane, state) {
  if (!pane) return [];
  const parts = [h('strong', { text: pane.view.label })];
  if (pane.layer) {
    const shape = shapeText(pane.layer.outputShape);
    parts.push(' · ', h('span', { class: 'intro-layer', text: pane.layer.name }), shape ? ` (${shape})` : '');
  }
  let what = pane.view.blurb;
  if (pane.family === 'feature_maps') {
    const label = pane.probeLabels ? pane.probeLabels[state.probe] : null;
    const probe = label === null || label === undefined ? `probe ${state.probe}` :
      `probe ${state.probe} (${className(pane.run.classNames, label)})`;
    what += ` Showing ${probe}, each channel scaled to ${state.scaling === 'layer' ? 'the whole layer' : 'its own'} range.`;
  }
  parts.push(h('span', { class: 'intro-text', text: ` — ${what}` }));
  return parts;
}
