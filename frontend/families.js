// The view families the dashboard draws, one module each, under the name that the `views`
// of /tags give them (tb_cnnvis/views/registry.py). A view of a family not listed here is
// not shown. Adding a family is one module that exports a Family (below) and one line here.
//
// In every member, `step` is a step of Store.steps() ({step, wallTime, facts, images}) and
// `ctx` is the page's state plus the pane's probes: {probe, size, explain, probeFilter,
// ...every family's settings, classNames, probeUrls, probeLabels, classOrder} (the app
// interface's ctx(pane); classOrder: subset.js).

/**
 * Everything the page needs to know about one family of views.
 *
 * @typedef {object} Family
 * @property {string} name the family's name, as in /tags (and its export name here).
 * @property {string} label its tab's text, e.g. 'CAMs' (its views are the methods chosen
 *     inside the tab).
 * @property {Object<string, *>} settings the page-state keys its display options set, with
 *     their defaults; they are saved with the selection, and changing one repaints.
 * @property {function(object, object): number} count count(step, ctx): how many items
 *     (cards) one step holds.
 * @property {function(object, object): Array<string>} urls urls(step, ctx): the image URLs
 *     that drawing one step's items needs (what a prefetch of the step loads).
 * @property {function(number, object, object): Caption} caption caption(i, step, ctx): the
 *     caption of item i's card.
 * @property {function(number, object, object): string} itemName itemName(i, step, ctx): e.g.
 *     'Filter 5' or 'Probe 2' (the detail's title, the card's accessible name).
 * @property {function(number, object, object): (number|string)} itemKey itemKey(i, step,
 *     ctx): what item i is, the same at every step that holds it (a channel, filter or
 *     probe index) while its place may differ: the detail follows it across epochs.
 * @property {function(number, object, object): ?number} probe probe(i, step, ctx): the probe
 *     image item i is about, or null.
 * @property {function(number, object): ?number} filter filter(i, step): the filter (channel)
 *     item i is about, or null.
 * @property {function(number, object, object): Array<Array<string>>} facts facts(i, step,
 *     ctx): every stored fact and metric of item i, as [label, text] rows for the detail.
 * @property {function(number, object, object, Store): Promise<*>} load load(i, step, ctx,
 *     store): fetch (through the store's caches) what draw() needs.
 * @property {function(HTMLCanvasElement, number, object, object, *): void} draw draw(canvas,
 *     i, step, ctx, data): draw item i from load()'s data with the current settings.
 * @property {function(object, function(string, *): void, Array<object>): Array<Node>} options
 *     options(state, set, steps): the fields of the options row (set(key, value) changes a
 *     setting), which may depend on what the steps of the panes shown store; the page adds
 *     the probe chooser (layout.pickProbe) and the size, and rebuilds the row when the
 *     fields' labels change.
 * @property {function(number, object, object, Store): Promise<?DetailRow>} detailRow
 *     detailRow(i, step, ctx, store): more images of item i for a row of the detail (a
 *     filter's diversity members), or null when the step has none.
 * @property {Array<Metric>} metrics the metric chips of the bar above the cards.
 * @property {Layout} layout where the page puts things for this family.
 * @property {function(object, object): string} [intro] intro(pane, state): more words for
 *     the line above the cards, after the view's blurb.
 */

/**
 * @typedef {object} Layout
 * @property {boolean} pickProbe the options row offers the probe chooser (the items are
 *     about the chosen probe).
 * @property {boolean} inset each card shows its item's probe image small in the caption.
 * @property {boolean} wide cards are two columns wide.
 * @property {boolean} detailProbe the detail shows the item's probe image.
 * @property {boolean} detailTop the detail shows the top-activating examples of the item's
 *     filter, when the layer has readable top examples.
 * @property {boolean} detailBig the detail shows the item large; otherwise its top examples
 *     take that place.
 * @property {boolean} pickClass the items are maps that explain a class, and a step may hold
 *     several per probe (`cam_classes`): the options row offers the class chooser, and the
 *     cards show the chosen class's map of each probe (subset.js).
 * @property {boolean} filterProbes the items are about probe images (probe(i) is not null):
 *     the options row offers the probe filter (all, misclassified, correctly classified).
 */

/**
 * A row of images in the detail, under the item shown large.
 *
 * @typedef {object} DetailRow
 * @property {string} title the row's heading.
 * @property {string} note a line under the heading ('' for none).
 * @property {Array<{caption: string, hint: string, draw: function(HTMLCanvasElement): void}>}
 *     figures one per image: its caption, its tooltip, and how to draw it into a canvas.
 */

/**
 * @typedef {object} Caption
 * @property {string} title the first line, e.g. '#5' or 'circle 93%'.
 * @property {string} [note] a short figure beside the title (e.g. a filter's drift).
 * @property {string} meta the second line.
 * @property {string} badge 'dead', 'off' or ''.
 * @property {string} tone 'good' (predicted the true class), 'bad' or ''.
 * @property {string} point the pointing game's 'hit', 'miss' or '' (not computed).
 * @property {string} [tag] a word on the image's corner (e.g. 'seeded'), or absent.
 * @property {string} [tagHint] the tag's tooltip: what it means.
 * @property {string} [noteHint] the note's tooltip (a drift's, by default).
 * @property {string} [empty] a sentence over an image that shows nothing (e.g. a CAM with no
 *     positive evidence), or absent.
 */

/**
 * One metric chip: a number per logged epoch, read from a step's facts.
 *
 * @typedef {object} Metric
 * @property {string} key its name on the page (data-metric).
 * @property {string} label its text.
 * @property {Array<string>} keys the facts it reads: shown when a step of the series has one.
 * @property {string} hint what it means (the chip's tooltip).
 * @property {function(object): ?number} value value(facts): the number plotted.
 * @property {function(object): ?number} [compare] compare(facts): a second, dashed line.
 * @property {function(object): string} text text(facts): the reading at one epoch.
 */

export { default as feature_maps } from './family_feature_maps.js';
export { default as filter_patterns } from './family_filter_patterns.js';
export { default as deepdream } from './family_deepdream.js';
export { default as cam } from './family_cam.js';
export { default as projection } from './family_projection.js';
export { default as top_examples } from './family_top_examples.js';
export { default as attribution } from './family_attribution.js';
