"""Pure logic: parsers, text formats, plans. Never imports click, rich, tabulate or pyroute2."""
