/**
 * What the figures were measured on: CPU, memory, Node.js and PostgreSQL versions and the date,
 * stored with the results because throughput figures mean little without them.
 */
import os from 'node:os';
import { serverVersion } from './database.js';

/** MachineInfo describes the machine and software a run measured. */
export interface MachineInfo {
  cpuModel: string;
  cpuCount: number;
  totalMemoryGiB: number;
  platform: string;
  node: string;
  postgres: string;
  date: string;
}

/** machineInfo gathers MachineInfo, asking the server behind `databaseUrl` for its version. */
export async function machineInfo(databaseUrl: string): Promise<MachineInfo> {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpuCount: cpus.length,
    totalMemoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgres: await serverVersion(databaseUrl),
    date: new Date().toISOString(),
  };
}
