// Small DOM helpers shared by every module that builds part of the page.
//
// Every name that comes from the data (runs, tags, layers, classes) reaches the page as a
// text node or textContent; no module of the dashboard assigns innerHTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** Apply h()'s props to an element (HTML or SVG). */
function assign(node, props) {
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === 'class') node.setAttribute('class', value);
    else if (key === 'text') node.textContent = value;
    else if (key === 'attrs') for (const [k, v] of Object.entries(value)) node.setAttribute(k, v);
    else if (key === 'on') for (const [k, v] of Object.entries(value)) node.addEventListener(k, v);
    else if (key === 'style') Object.assign(node.style, value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node[key] = value;
  }
}

/** Append children: strings become text nodes; null, undefined and false are skipped. */
function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

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
  assign(node, props);
  return append(node, children);
}

/**
 * Create an SVG element (attributes go in `attrs`, as for h()).
 *
 * @param {string} tag e.g. 'svg', 'polyline', 'circle'.
 * @param {object} props as for h().
 * @param {...(Node|null)} children appended in order.
 * @returns {SVGElement}
 * @example svg('circle', {attrs: {cx: 4, cy: 4, r: 2}})
 */
export function svg(tag, props = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  assign(node, props);
  return append(node, children);
}

let uid = 0;

/** A labelled control: <label for=id>text</label> followed by the control. */
export function field(text, control, extra = null) {
  control.id = control.id || `cv-${++uid}`;
  return h('div', { class: 'field' }, h('label', { htmlFor: control.id, text }), control, extra);
}

/** Fill a <dl> with [label, text] rows. */
export function setFacts(list, rows) {
  list.replaceChildren(...rows.flatMap(([label, text]) => [h('dt', { text: label }), h('dd', { text })]));
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
