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
    db: `${home}/log.db`,
    vaultFile: `${home}/vault.json`,
    vaultKey: `${home}/vault.key`,
    workspaces: `${home}/workspaces`,
    proxies: `${home}/proxy`,
  };
}
export type DataLayout = ReturnType<typeof dataLayout>;
