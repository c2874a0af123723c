/**
 * Where things live in a data directory (`$AGENTD_HOME`, default `~/.agentd`). Part
 * of the contract: clients find the daemon's socket and log file here.
 */
export function dataLayout(home: string) {
  return {
    home,
    socket: `${home}/daemon.sock`,
    logFile: `${home}/daemon.log`,
    /** The daemon's own settings (isolation floor, sandbox limits); optional. */
    config: `${home}/config.json`,
    pidFile: `${home}/daemon.pid`,
    /** Left by `agentd stop`: clients do not start the daemon on their own while it exists. */
    stopMarker: `${home}/daemon.stopped`,
    db: `${home}/log.db`,
    vaultFile: `${home}/vault.json`,
    vaultKey: `${home}/vault.key`,
    workspaces: `${home}/workspaces`,
    proxies: `${home}/proxy`,
  };
}
export type DataLayout = ReturnType<typeof dataLayout>;
