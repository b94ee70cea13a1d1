"""The agent: enrolled once with a server, it scans on a schedule, keeps its reports in an on-disk
spool until the server acknowledges them, and reports the machine's inventory."""

from quet.agent.config import AgentConfig, load_config, save_config
from quet.agent.spool import Spool

__all__ = ["AgentConfig", "Spool", "load_config", "save_config"]
