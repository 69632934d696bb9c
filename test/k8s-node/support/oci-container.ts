import { execFile, spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../../k8s/support/kube-tools.js';

const execFileAsync = promisify(execFile);
export const IMAGES_DIR = process.env.KUBE_IMAGES_DIR ?? join(REPO_ROOT, '.cache/images');
/** Cold: debootstrap, npm ci twice inside buildah, apt-get for Redis. */
export const IMAGES_TIMEOUT_MS = 20 * 60_000;

/** Builds (or finds cached) the relay, Redis and pause images; returns their OCI layout dirs. */
export async function ensureImages(): Promise<void> {
  await execFileAsync('bash', [join(REPO_ROOT, 'tools/kube/images.sh')], {
    timeout: IMAGES_TIMEOUT_MS,
    maxBuffer: 16 * 1024 * 1024,
  });
}

/**
 * The image's root filesystem unpacked once per manifest digest: containers
 * mount it read-only, so every run can share it.
 */
async function unpackedRootfs(image: string): Promise<{ rootfs: string; config: OciConfig }> {
  const layout = join(IMAGES_DIR, 'oci', image);
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as {
    manifests: { digest: string }[];
  };
  const digest = index.manifests[0]!.digest.replace('sha256:', '');
  const dir = join(IMAGES_DIR, 'bundles', `${image}-${digest.slice(0, 16)}`);
  if (!existsSync(join(dir, 'config.json'))) {
    const tmp = `${dir}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(join(IMAGES_DIR, 'bundles'), { recursive: true });
    await execFileAsync('umoci', ['unpack', '--image', `${layout}:latest`, tmp], { timeout: 120_000 });
    // earlier builds of this image are not needed any more
    for (const old of readdirSync(join(IMAGES_DIR, 'bundles')).filter(
      (n) => n.startsWith(`${image}-`) && !n.includes('.tmp-'),
    )) {
      rmSync(join(IMAGES_DIR, 'bundles', old), { recursive: true, force: true });
    }
    renameSync(tmp, dir);
  }
  // runc refuses a rootfs path that passes through a symlink (a linked .cache, say)
  return {
    rootfs: realpathSync(join(dir, 'rootfs')),
    config: JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')),
  };
}

interface OciConfig {
  process: {
    user: { uid: number; gid: number };
    args: string[];
    env: string[];
    cwd: string;
    terminal?: boolean;
  };
  root: { path: string; readonly?: boolean };
  mounts: { destination: string; type: string; source: string; options?: string[] }[];
  linux: { namespaces: { type: string }[] } & Record<string, unknown>;
  [key: string]: unknown;
}

export interface RunOptions {
  /** Extra environment, on top of the image's. */
  env?: Record<string, string>;
  /** Replaces the image's CMD (arguments after the entrypoint). */
  args?: string[];
}

/**
 * One container under runc, as a kubelet would start it: the image's user,
 * entrypoint and environment, a read-only root filesystem with an emptyDir-like
 * tmpfs at /tmp. It shares the host's network namespace so the test reaches it
 * on loopback only.
 */
export class OciContainer {
  output = '';
  readonly exited: Promise<number>;
  readonly #child: ChildProcess;

  private constructor(
    readonly id: string,
    readonly config: OciConfig,
    private readonly stateDir: string,
    private readonly bundle: string,
  ) {
    this.#child = spawn('runc', ['--root', stateDir, 'run', '--bundle', bundle, id], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const append = (chunk: Buffer): void => {
      if (this.output.length < 1 << 20) this.output += chunk.toString();
    };
    this.#child.stdout!.on('data', append);
    this.#child.stderr!.on('data', append);
    this.exited = new Promise((resolve) =>
      this.#child.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : 0))),
    );
  }

  static async run(image: string, options: RunOptions = {}): Promise<OciContainer> {
    const { rootfs, config } = await unpackedRootfs(image);
    const bundle = mkdtempSync(join(tmpdir(), `nb-oci-${image}-`));
    const stateDir = join(bundle, 'state');
    config.root = { path: rootfs, readonly: true };
    config.process.terminal = false;
    config.process.env = [
      ...config.process.env,
      ...Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`),
    ];
    if (options.args) config.process.args = [config.process.args[0]!, ...options.args];
    config.linux.namespaces = config.linux.namespaces.filter((ns) => ns.type !== 'network');
    config.mounts.push({
      destination: '/tmp',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'nodev', 'mode=1777'],
    });
    writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
    return new OciContainer(`nb-${image}-${process.pid}-${Date.now()}`, config, stateDir, bundle);
  }

  async exec(args: string[]): Promise<{ code: number; output: string }> {
    try {
      const { stdout, stderr } = await execFileAsync(
        'runc',
        ['--root', this.stateDir, 'exec', this.id, ...args],
        {
          timeout: 10_000,
        },
      );
      return { code: 0, output: stdout + stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
    }
  }

  /** The host PID of the container's first process (for /proc checks). */
  async pid(): Promise<number> {
    const { stdout } = await execFileAsync('runc', ['--root', this.stateDir, 'state', this.id]);
    return (JSON.parse(stdout) as { pid: number }).pid;
  }

  async signal(name: 'TERM' | 'KILL'): Promise<void> {
    await execFileAsync('runc', ['--root', this.stateDir, 'kill', this.id, name]);
  }

  /** Kills what is left and removes the container and its bundle. */
  async remove(): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      await this.signal('KILL').catch(() => {});
      await this.exited;
    }
    await execFileAsync('runc', ['--root', this.stateDir, 'delete', '--force', this.id]).catch(() => {});
    rmSync(this.bundle, { recursive: true, force: true });
  }
}
