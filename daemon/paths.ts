import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { dataLayout, type DataLayout } from '../protocol/index.js';

export type DataPaths = DataLayout;

export function dataPaths(home: string = process.env.AGENTD_HOME || join(homedir(), '.agentd')): DataPaths {
  return dataLayout(resolve(home));
}
