// The sidebar's layer list: a run's layers grouped by nested model and by resolution stage
// (each group collapsible), a filter box with the count of layers shown, and the layers the
// callback chose by default marked, with a toggle to show only those. The list's DOM is
// built once per run and kept while only the selection changes; filtering shows and hides
// the rows in place, so a keystroke costs one pass over the rows and no new elements.

import { h } from './dom.js';
import { shortName } from './format.js';
import { layerGroups, shapeText, splitPath } from './model.js';

/**
 * What the mark of a default layer means (its tooltip, the toggle's and the legend). The
 * rule is each family's (views.Family.default_layers): on a deep network one layer per
 * resolution stage, on a small one every convolution, for CAMs the last 4-D layer.
 */
export const DEFAULT_NOTE = 'chosen by the callback’s defaults (on a deep network, one per resolution stage)';

/**
 * A predicate over a layer's search text: every word of the query occurs in it.
 *
 * @param {string} query what the user typed (any case; words separated by spaces).
 * @returns {function(string): boolean} called with a lower-case search text.
 * @example layerMatcher('Block_13 conv')('mnet/block_13_expand\nconv2d')  // true
 */
export function layerMatcher(query) {
  const words = String(query || '').toLowerCase().split(/\s+/).filter(Boolean);
  return (text) => words.every((word) => text.includes(word));
}

/**
 * How many layers are shown: '12 of 153 layers', or '153 layers' when all are.
 *
 * @param {number} shown the layers shown.
 * @param {number} total the run's layers.
 * @returns {string}
 */
export function countText(shown, total) {
  const noun = total === 1 ? 'layer' : 'layers';
  return shown === total ? `${total} ${noun}` : `${shown} of ${total} ${noun}`;
}

/** A name's text with line-break opportunities (<wbr>) after each '_', '.' and '-'. */
function breakable(name) {
  return name.split(/(?<=[_.-])/).flatMap((part, i) => (i ? [h('wbr'), part] : [part]));
}

/**
 * Builds the layer list of a run and keeps it in step with the selection and the filter.
 *
 * @example
 *   const layers = new LayerList(app, ui.layerTools, ui.layerList);  // app: index.js's AppInterface
 *   layers.sync(run);  // after every change of run, view or layer
 */
export class LayerList {
  /**
   * @param {AppInterface} app the page's interface (state, set, remember).
   * @param {HTMLElement} tools the container of the filter box, count, toggle and legend.
   * @param {HTMLElement} list the <ul> the layers go in.
   */
  constructor(app, tools, list) {
    this.app = app;
    this.list = list;
    this.signature = null;
    this.rows = [];
    this.groups = [];
    this.active = null;
    this.mixed = false;
    /** Milliseconds spent building the list ({layers, ms}) and filtering it ({query, ms}). */
    this.timings = { builds: [], filters: [] };
    this.count = h('span', { class: 'layer-count', id: 'cv-layer-count', attrs: { role: 'status' } });
    this.input = h('input', {
      type: 'search',
      id: 'cv-layer-filter',
      class: 'layer-filter',
      placeholder: 'Filter by name or class',
      value: app.state.layerFilter || '',
      attrs: { autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'cv-layer-count' },
      on: { input: () => this.onInput(), keydown: (e) => this.onFilterKey(e) },
    });
    this.toggle = h(
      'button',
      {
        class: 'default-toggle',
        title: `Show only the layers ${DEFAULT_NOTE}`,
        attrs: { 'aria-pressed': 'false' },
        on: { click: () => this.toggleDefaults() },
      },
      h('span', { class: 'default-dot', attrs: { 'aria-hidden': 'true' } }),
      'Default layers only',
    );
    this.legend = h('p', { class: 'layer-legend', text: `All ${DEFAULT_NOTE}.`, hidden: true });
    this.empty = h('p', { class: 'layer-empty', hidden: true });
    tools.replaceChildren(
      h('label', { class: 'visually-hidden', htmlFor: this.input.id, text: 'Filter layers' }),
      this.input,
      h('div', { class: 'layer-tools-row' }, this.count, this.toggle),
      this.legend,
    );
    list.after(this.empty);
    list.addEventListener('keydown', (e) => this.onListKey(e));
  }

  /** Bring the list in step with the run and the selection (rebuilt only for a new run). */
  sync(run) {
    const start = performance.now();
    const signature = JSON.stringify([
      run.name,
      run.layers.map((l) => [l.name, l.layerClass, l.outputShape, l.defaults.size > 0]),
    ]);
    const built = signature !== this.signature;
    if (built) {
      this.build(run);
      this.signature = signature;
    }
    const { state } = this.app;
    const byName = new Map(run.layers.map((layer) => [layer.name, layer]));
    for (const row of this.rows) row.layer = byName.get(row.layer.name); // a refresh brings new objects
    for (const row of this.rows) {
      const missing = !row.layer.tags.has(state.kind);
      if (row.missing !== missing) {
        row.missing = missing;
        row.button.classList.toggle('missing', missing);
      }
      const current = row.layer.name === state.layer;
      if (row.current !== current) {
        row.current = current;
        row.button.setAttribute('aria-current', String(current));
      }
    }
    this.applyFilter();
    if (state.layer !== this.active) {
      this.active = state.layer;
      this.reveal(this.rows.find((row) => row.current));
    }
    if (built) this.timings.builds.push({ layers: run.layers.length, ms: performance.now() - start });
  }

  /** The list's DOM for a run: groups per nested model (when there are any), then stages. */
  build(run) {
    const closed = new Set(this.app.state.closedGroups || []);
    const withDefault = run.layers.filter((layer) => layer.defaults.size > 0).length;
    this.mixed = withDefault > 0 && withDefault < run.layers.length;
    this.rows = [];
    this.groups = [];
    const models = layerGroups(run.layers);
    const titled = models.length > 1 || (models.length === 1 && models[0].model !== '');
    const items = [];
    models.forEach(({ model, stages }, m) => {
      const stageItems = stages.map((stage, s) =>
        this.group(`stage:${m}:${model}:${s}:${stage.size}`, stage.size || 'size not logged', 'stage',
          stage.layers.map((layer) => this.row(layer)), closed));
      if (titled) items.push(this.group(`model:${m}:${model}`, model || 'Top level', 'model', stageItems, closed));
      else items.push(...stageItems);
    });
    this.list.replaceChildren(...items.map((group) => group.item));
    this.toggle.hidden = !this.mixed;
    this.legend.hidden = !(withDefault > 0 && !this.mixed);
    this.active = null;
  }

  /** One layer's row: its short name (shortened if long), class and shape; the full path as title and label. */
  row(layer) {
    const meta = [layer.layerClass, shapeText(layer.outputShape)].filter(Boolean).join(' · ');
    const marked = this.mixed && layer.defaults.size > 0;
    const dot = marked
      ? h('span', { class: 'default-dot', title: `C${DEFAULT_NOTE.slice(1)}`, attrs: { 'aria-hidden': 'true' } })
      : null;
    const button = h(
      'button',
      {
        class: 'layer',
        title: layer.name,
        attrs: { 'aria-current': 'false', 'aria-label': [layer.name, meta, marked ? 'chosen by default' : ''].filter(Boolean).join(', ') },
        dataset: { layer: layer.name, default: String(layer.defaults.size > 0) },
        on: { click: () => this.app.set({ layer: layer.name }, true) },
      },
      h('span', { class: 'layer-line' }, h('span', { class: 'layer-name' }, breakable(shortName(splitPath(layer.name).short))), dot),
      h('span', { class: 'layer-meta', text: meta }),
    );
    const row = {
      layer, button, item: h('li', { class: 'layer-row' }, button), isDefault: layer.defaults.size > 0,
      text: `${layer.name}\n${layer.layerClass}`.toLowerCase(), shown: true, current: false, missing: false,
    };
    this.rows.push(row);
    return row;
  }

  /**
   * A collapsible group (a nested model or a stage) of rows or of smaller groups.
   *
   * @returns {object} {key, kind, label, item, details, summary, tally, rows}: `item` is its
   *     <li>, `rows` every layer row inside it.
   */
  group(key, label, kind, children, closed) {
    const tally = h('span', { class: 'group-count' });
    const summary = h('summary', { class: `group-head ${kind}` }, h('span', { class: 'group-name', text: shortName(label, 200) }), tally);
    const details = h('details', { open: !closed.has(key) }, summary, h('ul', {}, children.map((child) => child.item)));
    const rows = children.flatMap((child) => child.rows || [child]);
    const item = h('li', { class: `layer-group ${kind}`, dataset: { group: label } }, details);
    const group = { key, kind, label, item, details, summary, tally, rows };
    details.addEventListener('toggle', () => this.onToggle(group));
    this.groups.push(group);
    return group;
  }

  /** Show the rows that match the filter (and the default-only toggle); update the counts. */
  applyFilter() {
    const start = performance.now();
    const query = this.input.value.trim();
    const match = layerMatcher(query);
    const onlyDefaults = this.mixed && Boolean(this.app.state.defaultLayersOnly);
    let shown = 0;
    for (const row of this.rows) {
      const visible = match(row.text) && (!onlyDefaults || row.isDefault);
      if (row.shown !== visible) {
        row.shown = visible;
        row.item.hidden = !visible;
      }
      if (visible) shown++;
    }
    this.filtering = query !== '';
    for (const group of this.groups) {
      const inside = group.rows.reduce((n, row) => n + (row.shown ? 1 : 0), 0);
      group.item.hidden = inside === 0;
      const text = inside === group.rows.length ? String(inside) : `${inside}/${group.rows.length}`;
      if (group.tally.textContent !== text) group.tally.textContent = text;
      const title = `${group.label}: ${countText(inside, group.rows.length)}`;
      if (group.summary.title !== title) group.summary.title = title;
      // While searching, every group with a match is open; otherwise as the user left it.
      const open = this.filtering ? inside > 0 : !(this.app.state.closedGroups || []).includes(group.key);
      if (group.details.open !== open) group.details.open = open;
    }
    this.count.textContent = countText(shown, this.rows.length);
    this.empty.hidden = shown > 0 || !this.rows.length;
    this.empty.textContent = shown ? '' : `No layer matches “${query}”${onlyDefaults ? ' among the default layers' : ''}.`;
    this.toggle.setAttribute('aria-pressed', String(onlyDefaults));
    this.timings.filters.push({ query, ms: performance.now() - start });
    if (this.timings.filters.length > 200) this.timings.filters.shift();
  }

  onInput() {
    this.app.remember({ layerFilter: this.input.value });
    this.applyFilter();
  }

  toggleDefaults() {
    this.app.remember({ defaultLayersOnly: !this.app.state.defaultLayersOnly });
    this.applyFilter();
  }

  /** A group opened or closed by the user (not while searching) is remembered. */
  onToggle(group) {
    if (this.filtering) return;
    const closed = new Set(this.app.state.closedGroups || []);
    if (closed.has(group.key) === !group.details.open) return;
    if (group.details.open) closed.delete(group.key);
    else closed.add(group.key);
    this.app.remember({ closedGroups: [...closed] });
  }

  /** Open the groups around a row and scroll it into view. */
  reveal(row) {
    if (!row) return;
    const around = this.groups.filter((group) => group.rows.includes(row) && !group.details.open);
    if (around.length && !this.filtering) {
      const keys = new Set(around.map((group) => group.key));
      this.app.remember({ closedGroups: (this.app.state.closedGroups || []).filter((key) => !keys.has(key)) });
      for (const group of around) group.details.open = true;
    }
    if (row.shown) row.button.scrollIntoView({ block: 'nearest' });
  }

  /** The visible layer buttons, in list order. */
  visibleButtons() {
    return this.rows.filter((row) => row.shown && row.button.offsetParent !== null).map((row) => row.button);
  }

  /** Escape clears the filter; Enter opens the first match; ↓ goes to the list. */
  onFilterKey(event) {
    if (event.key === 'Escape' && this.input.value) {
      this.input.value = '';
      this.onInput();
    } else if (event.key === 'Enter') {
      const first = this.rows.find((row) => row.shown);
      if (first) this.app.set({ layer: first.layer.name }, true);
    } else if (event.key === 'ArrowDown') {
      this.visibleButtons()[0]?.focus();
    } else {
      return;
    }
    event.preventDefault();
  }

  /** ↑ and ↓ move between the visible layers (↑ from the first goes back to the filter). */
  onListKey(event) {
    const moves = { ArrowDown: 1, ArrowUp: -1 };
    if (!(event.key in moves) || !event.target.classList.contains('layer')) return;
    const buttons = this.visibleButtons();
    const next = buttons.indexOf(event.target) + moves[event.key];
    (next < 0 ? this.input : buttons[next])?.focus();
    event.preventDefault();
  }
}
