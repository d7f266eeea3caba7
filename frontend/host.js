// What the dashboard takes from its host page, TensorBoard: the theme, the "data reloaded"
// message, and a place to keep the user's selection across reloads of the iframe.

/**
 * Add a stylesheet (a URL relative to the plugin's <base href>) and wait until it applies.
 *
 * @param {Document} doc the iframe's document.
 * @param {string} href e.g. './style.css'.
 * @returns {Promise<void>} resolves on load or error (the page stays usable unstyled).
 */
export function loadStylesheet(doc, href) {
  const link = doc.createElement('link');
  link.rel = 'stylesheet';
  link.href = href;
  const done = new Promise((resolve) => {
    link.onload = () => resolve();
    link.onerror = () => resolve();
  });
  doc.head.append(link);
  return done;
}

/**
 * Add stylesheets side by side (in this order in the cascade) and wait until all apply.
 *
 * @param {Document} doc the iframe's document.
 * @param {Array<string>} hrefs URLs relative to the plugin's <base href>.
 * @returns {Promise<void>}
 * @example await loadStylesheets(document, ['./style.css', './cards.css']);
 */
export function loadStylesheets(doc, hrefs) {
  return Promise.all(hrefs.map((href) => loadStylesheet(doc, href))).then(() => {});
}

/**
 * Follow TensorBoard's theme: its page's body has the class `dark-mode` in the dark theme
 * (TensorBoard's DarkModeSupporter toggles it). Outside TensorBoard, follow the OS.
 *
 * @param {Document} doc the iframe's document; html[data-theme] is set to 'light' or 'dark'.
 * @example watchTheme(document)  // then style with :root[data-theme='dark']
 */
export function watchTheme(doc) {
  const apply = (dark) => {
    doc.documentElement.dataset.theme = dark ? 'dark' : 'light';
  };
  let hostBody = null;
  try {
    if (window.parent !== window) hostBody = window.parent.document.body;
  } catch {
    hostBody = null; // A cross-origin host: its theme cannot be read.
  }
  if (hostBody) {
    const check = () => apply(hostBody.classList.contains('dark-mode'));
    new MutationObserver(check).observe(hostBody, { attributes: true, attributeFilter: ['class'] });
    check();
  } else {
    const query = window.matchMedia('(prefers-color-scheme: dark)');
    query.addEventListener('change', (e) => apply(e.matches));
    apply(query.matches);
  }
}

/**
 * Join TensorBoard's plugin message channel and call onReload on every
 * `experimental.DataReloaded` broadcast (its reload button and its periodic reload).
 *
 * The protocol is that of TensorBoard's plugin_lib: post 'experimental.bootstrap' with a
 * MessagePort to the host; messages are JSON {type, id, payload, error, isReply}, and the
 * host waits for a reply to each broadcast.
 *
 * @param {Function} onReload called without arguments.
 * @returns {boolean} whether a host was found.
 */
export function listenForReloads(onReload) {
  if (window.parent === window) return false;
  const channel = new MessageChannel();
  channel.port1.onmessage = (event) => {
    let message;
    try {
      message = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!message || message.isReply) return;
    if (message.type === 'experimental.DataReloaded') onReload();
    const reply = { type: message.type, id: message.id, payload: null, error: null, isReply: true };
    channel.port1.postMessage(JSON.stringify(reply));
  };
  window.parent.postMessage('experimental.bootstrap', window.location.origin, [channel.port2]);
  return true;
}

const STORAGE_KEY = 'cnnvis.state';

/** The saved values of `keys` (sessionStorage: per browser tab), or {} if none. */
export function loadState(keys) {
  try {
    const saved = JSON.parse(window.sessionStorage.getItem(STORAGE_KEY) || '{}');
    return Object.fromEntries(keys.filter((key) => key in saved).map((key) => [key, saved[key]]));
  } catch {
    return {}; // Storage unavailable or holding something else: start from the defaults.
  }
}

/** Save the values of `keys` from `state`; failing to save is harmless. */
export function saveState(state, keys) {
  try {
    const saved = Object.fromEntries(keys.map((key) => [key, state[key]]));
    window.sessionStorage.setItem(STORAGE_KEY, JSON.stringify(saved));
  } catch {
    // Private mode or a full quota: the selection is simply not remembered.
  }
}
