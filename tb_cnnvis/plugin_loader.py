"""The TensorBoard entry point of the cnnvis plugin: a light loader, no TensorFlow.

``setup.py`` registers ``cnnvis = tb_cnnvis.plugin_loader:CnnVisLoader`` in the entry-point
group ``tensorboard_plugins``. TensorBoard imports this module at start-up, before it knows
whether any cnnvis data exists, and an import error here would stop the whole ``tensorboard``
command, so this module imports only TensorBoard itself; the plugin (``tb_cnnvis.plugin``)
is imported when ``load`` is called.

Why a loader: TensorBoard keeps only 10 samples per tag for a plugin it does not know (the
Python loader's reservoir and the Rust data server alike), which would silently drop epochs.
``CnnVisLoader.fix_flags`` raises that bound for cnnvis to ``DEFAULT_SAMPLES_PER_TAG``
unless the user chose one with ``--samples_per_plugin cnnvis=N``.
"""

from tensorboard.plugins import base_plugin

from tb_cnnvis import metadata

DEFAULT_SAMPLES_PER_TAG = 1000
"""Steps (epochs) kept per cnnvis tag unless ``--samples_per_plugin cnnvis=N`` says otherwise.

Every kept step stays in the server's memory, so the bound is finite: a run with more
logged epochs than this keeps a random subset that always includes the newest one.
``--samples_per_plugin cnnvis=0`` keeps everything. Since stored format version 3 a kept
step costs the server a reference of about 100 bytes per tag (about 1.3 KB in the Python
loader's memory; the facts and PNGs stay in pixel files that the plugin reads on request),
so the bound stays at 1000 rather than going down: a lower one would drop epochs of long
runs again. Logs of version 2 hold their facts in memory, of version 1 their PNGs too.
"""


def parse_samples_per_plugin(value):
    """Turn a ``--samples_per_plugin`` value into a ``{plugin_name: int}`` dict.

    TensorBoard's own flag parser already yields a dict; a string such as
    ``"cnnvis=50,images=20"`` reaches ``fix_flags`` only when a program sets the flag
    directly (``program.TensorBoard.configure(samples_per_plugin=...)``).

    Args:
      value: a dict, ``None``, or a comma-separated ``name=count`` string.

    Returns:
      A new dict from plugin name to sample count.

    Raises:
      base_plugin.FlagsError: if a string entry is not ``name=non-negative integer``.

    Example:
      >>> parse_samples_per_plugin("cnnvis=50, images=20")
      {'cnnvis': 50, 'images': 20}
    """
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    result = {}
    for entry in str(value).split(","):
        entry = entry.strip()
        if not entry:
            continue
        name, _, count = entry.partition("=")
        if not name.strip() or not count.strip().isdigit():
            raise base_plugin.FlagsError(
                f"--samples_per_plugin entry {entry!r} is not of the form name=count "
                "(count a non-negative integer, 0 keeps every sample)"
            )
        result[name.strip()] = int(count)
    return result


class CnnVisLoader(base_plugin.TBLoader):
    """Loads the cnnvis plugin and gives it enough samples per tag to keep every epoch.

    TensorBoard calls ``fix_flags`` after parsing its command line and before it builds the
    data ingester, then ``load`` once the data provider exists.

    Example:
      >>> from tensorboard import program
      >>> tb = program.TensorBoard(plugins=[CnnVisLoader])  # or found via the entry point
    """

    def fix_flags(self, flags):
        """Default cnnvis to ``DEFAULT_SAMPLES_PER_TAG`` samples per tag; a user value wins.

        Args:
          flags: TensorBoard's parsed ``argparse.Namespace``; ``flags.samples_per_plugin``
            is updated in place (and normalized to a dict).

        Raises:
          base_plugin.FlagsError: if ``samples_per_plugin`` is a malformed string.
        """
        samples = parse_samples_per_plugin(getattr(flags, "samples_per_plugin", None))
        samples.setdefault(metadata.PLUGIN_NAME, DEFAULT_SAMPLES_PER_TAG)
        flags.samples_per_plugin = samples

    def load(self, context):
        """Create the plugin for this TensorBoard (imports ``tb_cnnvis.plugin`` now).

        Args:
          context: the ``base_plugin.TBContext`` TensorBoard built.

        Returns:
          A ``tb_cnnvis.plugin.CnnVisPlugin``.
        """
        from tb_cnnvis.plugin import CnnVisPlugin  # lazy: TensorBoard imports this module early

        return CnnVisPlugin(context)
