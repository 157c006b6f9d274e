/**
 * A second RabbitMQ node for the TLS, client-certificate and EXTERNAL tests, and the certificates it and the
 * tests use. test/integration/tls.test.ts's beforeAll calls `startTlsBroker()`, its afterAll
 * `stopTlsBroker()`; nothing else pays for it (a run of other test files never starts it).
 *
 * The node is started through scripts/broker.sh with its own name, data directory and ports, so the main
 * test broker (warren@localhost on 127.0.0.1:5672) is never touched:
 *
 *   node       warren-tls@localhost          (WARREN_TLS_BROKER_NODE)
 *   directory  /tmp/warren-broker-tls        (WARREN_TLS_BROKER_DIR); certificates in its certs/
 *   AMQP       127.0.0.1:5673                (WARREN_TLS_BROKER_PORT); Erlang distribution on 25673
 *   AMQPS      127.0.0.1:5671                (WARREN_TLS_BROKER_TLS_PORT)
 *
 * The TLS listener verifies a client certificate when one is sent (verify_peer) but does not require one
 * (fail_if_no_peer_cert = false). It offers PLAIN, AMQPLAIN and EXTERNAL; EXTERNAL logs in as the client
 * certificate's common name (user warren-ext, created here) and is refused (403) when no certificate came.
 * The plain port offers PLAIN and AMQPLAIN only. A second user with a non-ASCII name and a 300-byte
 * password is there for the credential-encoding tests.
 *
 * Reuse and teardown, safe for test runs that overlap (several `vitest run`s on one machine):
 * - Starting and stopping happen under a lock (the directory lock/, made with mkdir, holding the owner's
 *   pid; a dead owner's lock is taken over). Each run using the node leaves a lease, leases/<pid>.
 * - A node that already answers is used as is when its TLS listener presents exactly certs/server.pem, so a
 *   second run, or one after WARREN_TLS_BROKER_KEEP=1, costs no startup. A node from this directory that
 *   presents anything else is stopped and started again.
 * - `stopTlsBroker()` drops the lease and stops the node when no live run holds one — whoever started it, so
 *   a node left by an interrupted run goes too — unless WARREN_TLS_BROKER_KEEP=1.
 * - The certificates are made once per directory, in a scratch directory renamed into place, so a half-made
 *   set never counts. Delete the directory (with the node stopped) to start from nothing.
 */
import { execFile } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as tls from "node:tls";
import { fileURLToPath } from "node:url";
import { type ConnectOptions, connect } from "../../src/index.ts";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

export const TLS_BROKER = {
  node: process.env.WARREN_TLS_BROKER_NODE ?? "warren-tls@localhost",
  dir: process.env.WARREN_TLS_BROKER_DIR ?? "/tmp/warren-broker-tls",
  port: Number(process.env.WARREN_TLS_BROKER_PORT ?? 5673),
  tlsPort: Number(process.env.WARREN_TLS_BROKER_TLS_PORT ?? 5671),
  /** The user EXTERNAL logs in as: the client certificate's CN. */
  externalUser: "warren-ext",
  /** A user whose name and password are not ASCII, and whose password is longer than a short string. */
  unicodeUser: "wärren-ünï",
  unicodePassword: `pässwörd-✓-🐇-${"x".repeat(300)}`,
} as const;

/** PEM text of every certificate and key the tests use. */
export interface Certificates {
  dir: string;
  /** The test CA: it signed the server and client certificates; the broker trusts client certs it signed. */
  ca: string;
  /** CN=localhost, SAN DNS:localhost and IP:127.0.0.1, signed by `ca`. */
  serverCert: string;
  serverKey: string;
  /** CN=warren-ext, signed by `ca`: EXTERNAL logs in as warren-ext. */
  clientCert: string;
  clientKey: string;
  /** `clientKey` encrypted with the passphrase `clientKeyPassphrase`. */
  clientKeyEncrypted: string;
  clientKeyPassphrase: string;
  /** A second CA that has nothing to do with the first: nothing the broker presents chains to it. */
  otherCa: string;
  /** CN=warren-nobody, signed by `ca`: a trusted certificate whose name is no user. */
  strangerCert: string;
  strangerKey: string;
  /** CN=warren-ext again, but signed by `otherCa`: the broker must refuse it. */
  otherClientCert: string;
  otherClientKey: string;
}

const FILES = {
  ca: "ca.pem",
  serverCert: "server.pem",
  serverKey: "server.key",
  clientCert: "client.pem",
  clientKey: "client.key",
  clientKeyEncrypted: "client-encrypted.key",
  strangerCert: "stranger.pem",
  strangerKey: "stranger.key",
  otherCa: "other-ca.pem",
  otherClientCert: "other-client.pem",
  otherClientKey: "other-client.key",
} as const;

const PASSPHRASE = "warren-test-passphrase";

function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 180_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd: ROOT, env, timeout: timeoutMs, encoding: "utf8", maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(new Error(`${cmd} ${args.join(" ")} failed: ${err.message}\n${stderr}`), { stdout, stderr }));
      else resolve({ stdout, stderr });
    });
  });
}

// ---------------------------------------------------------------------------------------------------------
// Certificates

/** Makes the certificates with openssl unless `dir` already holds a complete set; returns their PEM text. */
export async function makeCertificates(dir: string): Promise<Certificates> {
  if (!Object.values(FILES).every((f) => existsSync(join(dir, f)))) {
    const scratch = `${dir}.tmp-${process.pid}`;
    rmSync(scratch, { recursive: true, force: true });
    mkdirSync(scratch, { recursive: true });
    const p = (f: string) => join(scratch, f);
    // P-256 keys: generated in milliseconds, and every TLS stack involved (OpenSSL, Erlang's ssl) takes them.
    const newKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    const ca = async (name: string, file: string) =>
      run("openssl", ["req", "-x509", "-new", ...newKey, "-keyout", p(`${file}.key`), "-out", p(`${file}.pem`), "-days", "3650", "-subj", `/CN=${name}`,
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    const leaf = async (cn: string, file: string, caFile: string, serial: number, ext: string) => {
      await run("openssl", ["req", "-new", ...newKey, "-keyout", p(`${file}.key`), "-out", p(`${file}.csr`), "-subj", `/CN=${cn}`]);
      writeFileSync(p(`${file}.ext`), `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n${ext}\n`);
      await run("openssl", ["x509", "-req", "-in", p(`${file}.csr`), "-CA", p(`${caFile}.pem`), "-CAkey", p(`${caFile}.key`), "-set_serial", String(serial),
        "-days", "3650", "-extfile", p(`${file}.ext`), "-out", p(`${file}.pem`)]);
    };
    await Promise.all([ca("warren test CA", "ca"), ca("warren unrelated CA", "other-ca")]);
    await Promise.all([
      leaf("localhost", "server", "ca", 2, "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1"),
      leaf(TLS_BROKER.externalUser, "client", "ca", 3, "extendedKeyUsage=clientAuth"),
      leaf(TLS_BROKER.externalUser, "other-client", "other-ca", 4, "extendedKeyUsage=clientAuth"),
      leaf("warren-nobody", "stranger", "ca", 5, "extendedKeyUsage=clientAuth"),
    ]);
    await run("openssl", ["pkey", "-in", p("client.key"), "-aes256", "-passout", `pass:${PASSPHRASE}`, "-out", p(FILES.clientKeyEncrypted)]);
    rmSync(dir, { recursive: true, force: true });
    renameSync(scratch, dir);
  }
  const read = (f: string) => readFileSync(join(dir, f), "utf8");
  return {
    dir,
    ca: read(FILES.ca),
    serverCert: read(FILES.serverCert),
    serverKey: read(FILES.serverKey),
    clientCert: read(FILES.clientCert),
    clientKey: read(FILES.clientKey),
    clientKeyEncrypted: read(FILES.clientKeyEncrypted),
    clientKeyPassphrase: PASSPHRASE,
    strangerCert: read(FILES.strangerCert),
    strangerKey: read(FILES.strangerKey),
    otherCa: read(FILES.otherCa),
    otherClientCert: read(FILES.otherClientCert),
    otherClientKey: read(FILES.otherClientKey),
  };
}

// ---------------------------------------------------------------------------------------------------------
// The node

function brokerEnv(certDir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    WARREN_BROKER_NODE: TLS_BROKER.node,
    WARREN_BROKER_DIR: TLS_BROKER.dir,
    WARREN_BROKER_PORT: String(TLS_BROKER.port),
    WARREN_BROKER_PLUGINS: "rabbitmq_auth_mechanism_ssl",
    // Keys from RabbitMQ 3.10's rabbit.schema; EXTERNAL comes from the rabbitmq_auth_mechanism_ssl plugin.
    WARREN_BROKER_EXTRA_CONF: [
      `listeners.ssl.1 = 127.0.0.1:${TLS_BROKER.tlsPort}`,
      `ssl_options.cacertfile = ${join(certDir, FILES.ca)}`,
      `ssl_options.certfile = ${join(certDir, FILES.serverCert)}`,
      `ssl_options.keyfile = ${join(certDir, FILES.serverKey)}`,
      "ssl_options.verify = verify_peer",
      "ssl_options.fail_if_no_peer_cert = false",
      "auth_mechanisms.1 = PLAIN",
      "auth_mechanisms.2 = AMQPLAIN",
      "auth_mechanisms.3 = EXTERNAL",
      "ssl_cert_login_from = common_name",
    ].join("\n"),
  };
}

/**
 * True when the TLS port completes a handshake presenting exactly `serverCert` (so the node was started
 * with these certificates). Never throws.
 */
function presents(serverCert: string, ca: string): Promise<boolean> {
  const want = new X509Certificate(serverCert).fingerprint256;
  return new Promise((resolve) => {
    const s = tls.connect({ host: "127.0.0.1", port: TLS_BROKER.tlsPort, ca, servername: "localhost", rejectUnauthorized: false });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 3000);
    s.once("secureConnect", () => done(s.getPeerCertificate().fingerprint256 === want));
    s.once("error", () => done(false));
  });
}

/** True when a connection with these options logs in and may declare a queue. Never throws. */
async function loginWorks(url: string, options: ConnectOptions): Promise<boolean> {
  try {
    const conn = await connect(url, { ...options, connectionTimeout: 5000 });
    try {
      const ch = await conn.openChannel();
      await ch.queueDeclare("", { exclusive: true });
      return true;
    } finally {
      await conn.close();
    }
  } catch {
    return false;
  }
}

export interface TlsBroker {
  certs: Certificates;
  /** Runs rabbitmqctl against the TLS node; resolves with its standard output. */
  ctl(args: readonly string[]): Promise<string>;
  /** True when this process started the node (rather than finding it running). */
  started: boolean;
}

let current: TlsBroker | undefined;

const LOCK = join(TLS_BROKER.dir, "lock");
const LEASES = join(TLS_BROKER.dir, "leases");

/** Whether process `pid` runs (EPERM: it runs, as another user). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Runs `f` while holding the node's lock: a directory made with mkdir (atomic), holding the owner's pid. A
 * lock whose owner died (an interrupted run) is taken over.
 */
async function withLock<T>(f: () => Promise<T>, timeoutMs = 170_000): Promise<T> {
  mkdirSync(TLS_BROKER.dir, { recursive: true });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(join(LOCK, "owner"), String(process.pid));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    let owner = NaN;
    try {
      owner = Number(readFileSync(join(LOCK, "owner"), "utf8"));
    } catch {
      // Just made, owner not written yet — or left empty by a process killed in between: give it a moment.
      const made = statSync(LOCK, { throwIfNoEntry: false });
      if (made === undefined) continue;
      if (Date.now() - made.mtimeMs > 10_000) owner = 0;
    }
    if (owner === 0 || (Number.isInteger(owner) && owner > 0 && !alive(owner))) {
      rmSync(LOCK, { recursive: true, force: true });
      continue;
    }
    if (Date.now() > deadline) throw new Error(`Timed out waiting for the TLS test broker's lock ${LOCK} (held by pid ${owner})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  try {
    return await f();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

/** Test runs (by pid) that use the node now. A run that died without stopping counts no more. */
function liveLeases(): number[] {
  mkdirSync(LEASES, { recursive: true });
  return readdirSync(LEASES)
    .map(Number)
    .filter((pid) => {
      if (pid === process.pid || alive(pid)) return true;
      rmSync(join(LEASES, String(pid)), { force: true });
      return false;
    });
}

/** Polls `presents` for up to `ms`: the TLS listener may come up a moment after the plain one answers. */
async function waitUntilPresents(serverCert: string, ca: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await presents(serverCert, ca)) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/**
 * Makes the certificates, starts the TLS node unless it already runs with them, creates its users, and
 * records this process as one of the node's users. Safe to call from concurrent test runs.
 */
export async function startTlsBroker(): Promise<TlsBroker> {
  if (current) return current;
  current = await withLock(async () => {
    const inUse = liveLeases().filter((pid) => pid !== process.pid).length > 0;
    const certs = await makeCertificates(join(TLS_BROKER.dir, "certs"));
    const env = brokerEnv(certs.dir);
    const broker = (args: readonly string[]) => run("bash", ["scripts/broker.sh", ...args], env);
    let started = false;
    if (!(await waitUntilPresents(certs.serverCert, certs.ca, inUse ? 5000 : 0))) {
      // Nothing runs, or a node from this directory runs with other certificates: (re)start it. `stop` only
      // stops a node started from this directory; anything else on these ports makes the check below fail.
      // (Only when something answers: `stop` on a stale pid file would signal whatever has that pid now.)
      if (await broker(["status"]).then(() => true, () => false)) await broker(["stop"]);
      await broker(["start"]);
      started = true;
      if (!(await waitUntilPresents(certs.serverCert, certs.ca, 20_000))) {
        throw new Error(
          `The TLS test broker answers on 127.0.0.1:${TLS_BROKER.port} but does not present ${certs.dir}/server.pem on 127.0.0.1:${TLS_BROKER.tlsPort}. ` +
            `Is another program using these ports? See ${TLS_BROKER.dir}/log.`,
        );
      }
    }
    const ctl = async (args: readonly string[]) => (await broker(["ctl", ...args])).stdout;
    // The users live in the node's data directory, so a reused node usually has them already: two login
    // attempts (milliseconds) save four rabbitmqctl runs (three to four seconds).
    const [external, unicode] = await Promise.all([
      loginWorks(`amqps://localhost:${TLS_BROKER.tlsPort}/?auth_mechanism=EXTERNAL`, { tls: { ca: certs.ca, cert: certs.clientCert, key: certs.clientKey } }),
      loginWorks(`amqp://127.0.0.1:${TLS_BROKER.port}/`, { username: TLS_BROKER.unicodeUser, password: TLS_BROKER.unicodePassword }),
    ]);
    const users: [string, string, boolean][] = [
      [TLS_BROKER.externalUser, "not-used-by-EXTERNAL", external],
      [TLS_BROKER.unicodeUser, TLS_BROKER.unicodePassword, unicode],
    ];
    for (const [user, password, ready] of users) {
      if (ready) continue;
      await ctl(["add_user", user, password]).catch(async (e: { stderr?: string }) => {
        if (!/already exists/.test(e.stderr ?? "")) throw e;
        await ctl(["change_password", user, password]);
      });
      await ctl(["set_permissions", "-p", "/", user, ".*", ".*", ".*"]);
    }
    writeFileSync(join(LEASES, String(process.pid)), "");
    return { certs, ctl, started };
  });
  return current;
}

/**
 * Gives up this process's use of the node, and stops it when no other live test run uses it — whoever
 * started it, so a node left by an interrupted run goes too — unless WARREN_TLS_BROKER_KEEP=1.
 */
export async function stopTlsBroker(): Promise<void> {
  const b = current;
  current = undefined;
  if (!b) return;
  await withLock(async () => {
    rmSync(join(LEASES, String(process.pid)), { force: true });
    if (liveLeases().length > 0 || process.env.WARREN_TLS_BROKER_KEEP === "1") return;
    await run("bash", ["scripts/broker.sh", "stop"], brokerEnv(b.certs.dir));
  }, 50_000);
}
