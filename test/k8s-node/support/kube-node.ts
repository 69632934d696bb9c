import { execFile, spawn, type ChildProcess } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { KubeApiServer } from '../../k8s/support/kube-api-server.js';
import { freePort } from '../../support/free-port.js';
import { acquireNodeLock, releaseNodeLock } from './node-lock.js';

const execFileAsync = promisify(execFile);
const BRIDGE_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), 'socket-bridge.mjs');

export const NODE_NAME = 'node-0';
/** The node's own address, inside its network namespace; the API is reached there too. */
export const NODE_IP = '10.250.0.1';
/** Nothing answers there: what no Service or pod route catches goes nowhere. */
const NODE_GATEWAY = '10.250.0.254';
export const POD_SUBNET = '10.244.0.0/24';
/** Same range as KubeApiServer's --service-cluster-ip-range; the `kubernetes` Service takes the first. */
export const SERVICE_CIDR = '10.96.0.0/16';
export const KUBERNETES_SERVICE_IP = '10.96.0.1';
const CGROUP_FS = '/sys/fs/cgroup';
/** The kernel settings the kubelet rewrites on start (setupKernelTunables); put back on stop. */
const KUBELET_SYSCTLS = ['vm/overcommit_memory', 'vm/panic_on_oom', 'kernel/panic', 'kernel/panic_on_oops'];

export interface KubeNodeOptions {
  api: KubeApiServer;
  /** Directory with kubelet and kube-proxy (tools/kube/build.sh). */
  binDir: string;
  /** Image name -> OCI layout directory, imported into containerd before the kubelet starts. */
  images: Record<string, string>;
  /** The pod sandbox image (containerd's sandbox_image); one of `images`. */
  sandboxImage: string;
  /** CoreDNS binary: serves cluster.local at NODE_IP:53 from the API, as the pods' nameserver. */
  coredns?: string;
}

/**
 * One real Kubernetes node: containerd (CRI) + runc + the CNI bridge plugin +
 * kubelet + kube-proxy (iptables mode), all inside a network and mount
 * namespace of their own. The host keeps its iptables, routes and /run: the
 * node's /run, /var/log and /var/lib are tmpfs inside its mount namespace, its state is
 * in one temp dir, its processes and pods in one cgroup subtree that stop()
 * empties and removes. The API server stays on the host's loopback; a pair of
 * socket bridges (a Unix socket crosses namespaces) makes it reachable at
 * NODE_IP inside, where the `kubernetes` Service's endpoint points.
 */
export class KubeNode {
  readonly dir: string;
  readonly #options: KubeNodeOptions;
  readonly #cgroup: string;
  readonly #children: ChildProcess[] = [];
  /** kubelet and kube-proxy: stopped first, so nothing restarts what is being killed. */
  readonly #agents: ChildProcess[] = [];
  readonly #sysctls = new Map<string, string>();
  #holder: ChildProcess | undefined;

  private constructor(options: KubeNodeOptions) {
    this.#options = options;
    this.dir = mkdtempSync(join(tmpdir(), 'nb-node-'));
    this.#cgroup = `/${this.dir.split('/').pop()!}`;
  }

  /** Waits (up to `lockTimeoutMs`) while another test file's node runs. */
  static async start(options: KubeNodeOptions, lockTimeoutMs = 30 * 60_000): Promise<KubeNode> {
    await acquireNodeLock(lockTimeoutMs);
    const node = new KubeNode(options);
    try {
      await node.#start();
    } catch (err) {
      await node.stop();
      throw err;
    }
    return node;
  }

  /** Inside the node's namespaces (net + mount). */
  #nsenter(): string[] {
    return ['nsenter', `--target=${this.#holder!.pid}`, '--net', '--mount', '--'];
  }

  async #start(): Promise<void> {
    for (const key of KUBELET_SYSCTLS)
      this.#sysctls.set(key, readFileSync(`/proc/sys/${key}`, 'utf8').trim());
    this.#makeCgroups();
    await this.#startHolder();
    await this.#bridgeApiServer();
    this.#writeConfigs();
    await this.#startContainerd();
    for (const [name, layout] of Object.entries(this.#options.images)) await this.#importImage(name, layout);
    if (this.#options.coredns) {
      this.#launch('coredns', [this.#options.coredns, `-conf=${this.#path('Corefile')}`]);
    }
    const bin = this.#options.binDir;
    this.#agents.push(
      this.#launch('kubelet', [
        join(bin, 'kubelet'),
        `--config=${this.#path('kubelet.yaml')}`,
        `--kubeconfig=${this.#path('node.kubeconfig')}`,
        `--hostname-override=${NODE_NAME}`,
        `--node-ip=${NODE_IP}`,
        `--root-dir=${this.#path('kubelet')}`,
        `--cert-dir=${this.#path('kubelet/pki')}`,
        '--v=1',
      ]),
    );
    this.#agents.push(
      this.#launch('kube-proxy', [
        join(bin, 'kube-proxy'),
        `--config=${this.#path('kube-proxy.yaml')}`,
        '--v=1',
      ]),
    );
  }

  #path(name: string): string {
    return join(this.dir, name);
  }

  /** The kubeconfig the node's own processes use (cluster-admin, the API at NODE_IP). */
  get kubeconfig(): string {
    return this.#path('node.kubeconfig');
  }

  /** A process of the test inside the node's namespaces, logged to <dir>/<name>.log and ended by stop(). */
  run(name: string, argv: string[]): ChildProcess {
    return this.#launch(name, argv);
  }

  /** One cgroup in every v1 hierarchy: the kubelet's cgroupRoot, and (in pids) the node's own processes. */
  #makeCgroups(): void {
    for (const hierarchy of this.#hierarchies()) {
      const dir = join(CGROUP_FS, hierarchy, this.#cgroup);
      mkdirSync(dir, { recursive: true });
      if (hierarchy === 'cpuset') {
        for (const file of ['cpuset.cpus', 'cpuset.mems']) {
          writeFileSync(join(dir, file), readFileSync(join(CGROUP_FS, 'cpuset', file)));
        }
      }
    }
    mkdirSync(join(CGROUP_FS, 'pids', this.#cgroup, 'node'));
  }

  #nodeProcs(): string {
    return join(CGROUP_FS, 'pids', this.#cgroup, 'node', 'cgroup.procs');
  }

  #hierarchies(): string[] {
    // all of them, the v2 `unified` one too: the kubelet makes its cgroupRoot there as well
    return readdirSync(CGROUP_FS).filter((name) => existsSync(join(CGROUP_FS, name, 'cgroup.procs')));
  }

  /** A process that holds the namespaces; everything of the node joins them with nsenter. */
  async #startHolder(): Promise<void> {
    const setup = [
      `echo $$ > ${this.#nodeProcs()}`,
      'exec unshare --net --mount --propagation private -- sh -c "$0"',
    ].join(' && ');
    const inside = [
      'mount -t tmpfs -o mode=755 nb-node-run /run',
      'mount -t tmpfs -o mode=755 nb-node-log /var/log',
      // the kubelet's device-plugin socket dir and containerd's CNI result cache are fixed paths under
      // /var/lib whatever their roots say; a tmpfs keeps them off the host
      'mount -t tmpfs -o mode=755 nb-node-lib /var/lib',
      'ip link set lo up',
      // the node's "uplink": a veth pair with both ends inside (this kernel has no dummy links); the default
      // route through it lets the node's own connections to ClusterIPs be routed, then DNATed to a pod
      'ip link add nb-node type veth peer name nb-node-peer',
      'ip link set nb-node up && ip link set nb-node-peer up',
      `ip addr add ${NODE_IP}/24 dev nb-node`,
      `ip route add default via ${NODE_GATEWAY} dev nb-node`,
      'echo ready',
      'exec sleep infinity',
    ].join(' && ');
    this.#holder = this.#launch('holder', ['sh', '-c', setup, inside], { onHost: true, pipeStdout: true });
    await readyLine(this.#holder, 'namespace holder');
  }

  /** node's NODE_IP:<api port> -> unix socket -> host 127.0.0.1:<api port>. */
  async #bridgeApiServer(): Promise<void> {
    const socket = this.#path('api.sock');
    const port = this.#options.api.port;
    await this.#bridge('api-host', true, `unix:${socket}`, `tcp:127.0.0.1:${port}`);
    await this.#bridge('api-node', false, `tcp:${NODE_IP}:${port}`, `unix:${socket}`);
  }

  async #bridge(name: string, onHost: boolean, listen: string, target: string): Promise<void> {
    const child = this.#launch(name, [process.execPath, BRIDGE_SCRIPT, listen, target], {
      onHost,
      pipeStdout: true,
    });
    await readyLine(child, `socket bridge ${name}`);
  }

  /** A port on the host's loopback that reaches host:port inside the node (a ClusterIP, a pod IP). */
  async expose(host: string, port: number): Promise<number> {
    const local = await freePort();
    const socket = this.#path(`expose-${local}.sock`);
    await this.#bridge(`expose-node-${local}`, false, `unix:${socket}`, `tcp:${host}:${port}`);
    await this.#bridge(`expose-host-${local}`, true, `tcp:127.0.0.1:${local}`, `unix:${socket}`);
    return local;
  }

  #writeConfigs(): void {
    const d = (name: string): string => this.#path(name);
    const api = this.#options.api;
    for (const name of ['ca.crt', 'admin.crt', 'admin.key']) copyFileSync(join(api.dir, name), d(name));
    mkdirSync(d('cni'));
    mkdirSync(d('kubelet/pki'), { recursive: true });
    writeFileSync(d('resolv.conf'), '');
    // The test's cluster-admin certificate: the API server here authorises with RBAC only (no Node
    // authorizer), so a system:nodes identity would need bindings that say nothing about the chart.
    writeFileSync(
      d('node.kubeconfig'),
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          {
            name: 'test',
            cluster: { server: `https://${NODE_IP}:${api.port}`, 'certificate-authority': d('ca.crt') },
          },
        ],
        users: [
          { name: 'node', user: { 'client-certificate': d('admin.crt'), 'client-key': d('admin.key') } },
        ],
        contexts: [{ name: 'test', context: { cluster: 'test', user: 'node' } }],
        'current-context': 'test',
      }),
    );
    // CoreDNS as the cluster DNS, a process of the node rather than a pod (no image of it is built)
    writeFileSync(
      d('Corefile'),
      `.:53 {\n  bind ${NODE_IP}\n  errors\n  kubernetes cluster.local in-addr.arpa {\n    kubeconfig ${d('node.kubeconfig')} test\n  }\n}\n`,
    );
    writeFileSync(
      d('containerd.toml'),
      `version = 2
root = "${d('containerd/root')}"
state = "${d('containerd/state')}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "${d('containerd.sock')}"
[ttrpc]
  address = "${d('containerd.sock.ttrpc')}"
[plugins."io.containerd.internal.v1.opt"]
  path = "${d('containerd/opt')}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${this.#options.sandboxImage}"
  stream_server_address = "127.0.0.1"
  disable_apparmor = true
  # this machine's root lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj to the kubelet's -998
  # for sandboxes, so clamp every container's value to containerd's own
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${d('cni')}"
`,
    );
    writeFileSync(
      d('cni/10-bridge.conflist'),
      JSON.stringify({
        cniVersion: '0.4.0',
        name: 'nb-node',
        plugins: [
          {
            type: 'bridge',
            bridge: 'cni0',
            isGateway: true,
            hairpinMode: true,
            ipam: {
              type: 'host-local',
              ranges: [[{ subnet: POD_SUBNET }]],
              routes: [{ dst: '0.0.0.0/0' }],
              dataDir: d('cni-ipam'),
            },
          },
        ],
      }),
    );
    writeFileSync(
      d('kubelet.yaml'),
      JSON.stringify({
        apiVersion: 'kubelet.config.k8s.io/v1beta1',
        kind: 'KubeletConfiguration',
        // this host mounts cgroup v1 controllers (v2 only for systemd's name): kubelet >= 1.35 refuses that by default
        failCgroupV1: false,
        cgroupDriver: 'cgroupfs',
        cgroupRoot: this.#cgroup,
        failSwapOn: false,
        containerRuntimeEndpoint: `unix://${d('containerd.sock')}`,
        podLogsDir: d('pod-logs'),
        resolvConf: d('resolv.conf'),
        clusterDomain: 'cluster.local',
        clusterDNS: this.#options.coredns ? [NODE_IP] : [],
        address: NODE_IP,
        readOnlyPort: 0,
        healthzBindAddress: '127.0.0.1',
        authentication: {
          anonymous: { enabled: false },
          webhook: { enabled: false },
          x509: { clientCAFile: d('ca.crt') },
        },
        authorization: { mode: 'AlwaysAllow' },
        // the images cannot be pulled again: never collect them
        imageGCHighThresholdPercent: 100,
        imageGCLowThresholdPercent: 99,
        evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%' },
        shutdownGracePeriod: '0s',
        rotateCertificates: false,
        serializeImagePulls: false,
        // probes and status at test speed
        nodeStatusUpdateFrequency: '2s',
        syncFrequency: '5s',
      }),
    );
    writeFileSync(
      d('kube-proxy.yaml'),
      JSON.stringify({
        apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
        kind: 'KubeProxyConfiguration',
        mode: 'iptables',
        clientConnection: { kubeconfig: d('node.kubeconfig') },
        hostnameOverride: NODE_NAME,
        clusterCIDR: '10.244.0.0/16',
        // pods reach Services on their own bridge: without SNAT a reply would skip the DNAT's reverse
        iptables: { masqueradeAll: true, syncPeriod: '30s', minSyncPeriod: '0s' },
        // 0 = leave the kernel's conntrack settings alone (nf_conntrack_max is not per namespace)
        conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
        metricsBindAddress: '127.0.0.1:10249',
        healthzBindAddress: '127.0.0.1:10256',
      }),
    );
  }

  async #startContainerd(): Promise<void> {
    this.#launch('containerd', ['containerd', `--config=${this.#path('containerd.toml')}`]);
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (
        await this.ctr(['version']).then(
          () => true,
          () => false,
        )
      )
        return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`containerd did not answer\n${this.logTail('containerd')}`);
  }

  /** ctr against this node's containerd, in the CRI's namespace. */
  async ctr(args: string[]): Promise<string> {
    const { stdout } = await execFileAsync(
      'ctr',
      [`--address=${this.#path('containerd.sock')}`, '--namespace=k8s.io', ...args],
      { maxBuffer: 16 * 1024 * 1024, timeout: 300_000 },
    );
    return stdout;
  }

  async #importImage(name: string, layout: string): Promise<void> {
    const archive = this.#path(`image-${name.replace(/[^a-z0-9]+/g, '-')}.tar`);
    await execFileAsync('tar', ['-C', layout, '-cf', archive, '.']);
    // The layout names its manifest "latest" only: the base name makes that <repository>:latest (without
    // it ctr invents import-<date>:latest for every image, one name the CRI then resolves wrongly).
    const repository = name.slice(0, name.lastIndexOf(':'));
    await this.ctr(['images', 'import', `--base-name=${repository}`, `--index-name=${name}`, archive]);
    rmSync(archive);
  }

  /** Starts a process, inside the node's namespaces unless `onHost`; stdout piped for a ready line, else logged. */
  #launch(
    name: string,
    argv: string[],
    options: { onHost?: boolean; pipeStdout?: boolean } = {},
  ): ChildProcess {
    const log = openSync(this.#path(`${name}.log`), 'a');
    // inside the node: into its cgroup first, so stop() finds every descendant (containerd's shims too)
    const command = options.onHost
      ? argv
      : ['sh', '-c', `echo $$ > ${this.#nodeProcs()} && exec "$@"`, 'sh', ...this.#nsenter(), ...argv];
    const child = spawn(command[0]!, command.slice(1), {
      stdio: ['ignore', options.pipeStdout ? 'pipe' : log, log],
    });
    closeSync(log);
    this.#children.push(child);
    return child;
  }

  /** What `kubectl logs` would show: the kubelet's log file of a container (the API cannot reach in here). */
  podLog(namespace: string, pod: string, uid: string, container: string): string {
    const dir = join(this.#path('pod-logs'), `${namespace}_${pod}_${uid}`, container);
    return readdirSync(dir)
      .filter((f) => f.endsWith('.log'))
      .map((f) => readFileSync(join(dir, f), 'utf8'))
      .join('');
  }

  logTail(name: string, chars = 4000): string {
    try {
      return readFileSync(this.#path(`${name}.log`), 'utf8').slice(-chars);
    } catch {
      return '';
    }
  }

  async stop(): Promise<void> {
    try {
      await Promise.all(this.#agents.map((c) => terminate(c, 'SIGTERM', 10_000)));
      await this.#killCgroupTree();
      await Promise.all(this.#children.map((c) => terminate(c, 'SIGKILL', 5_000)));
      this.#removeCgroups();
      for (const [key, value] of this.#sysctls) writeFileSync(`/proc/sys/${key}`, value);
      rmSync(this.dir, { recursive: true, force: true });
    } finally {
      releaseNodeLock();
    }
  }

  /** SIGKILL to every process of the node and its pods (all started by this test, found by cgroup). */
  async #killCgroupTree(): Promise<void> {
    const root = join(CGROUP_FS, 'pids', this.#cgroup);
    for (let round = 0; round < 50; round++) {
      const pids = cgroupPids(root);
      if (pids.length === 0) return;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`processes left in ${root}: ${cgroupPids(root).join(' ')}`);
  }

  #removeCgroups(): void {
    for (const hierarchy of this.#hierarchies()) removeCgroupTree(join(CGROUP_FS, hierarchy, this.#cgroup));
  }
}

function cgroupPids(dir: string): number[] {
  if (!existsSync(dir)) return [];
  const pids = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) pids.push(...cgroupPids(join(dir, entry.name)));
  }
  return pids;
}

function removeCgroupTree(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeCgroupTree(join(dir, entry.name));
  }
  rmdirSync(dir);
}

async function terminate(child: ChildProcess, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

function readyLine(child: ChildProcess, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => (line === 'ready' ? resolve() : reject(new Error(`${what}: ${line}`))));
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}): ${stderr}`)));
  });
}
