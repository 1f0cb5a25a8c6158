// A tiny "browser": fetch with a cookie jar and manual redirects, plus the
// script that walks oidc-provider's own device-verification, login and
// consent pages the way a user would. Nothing here touches provider
// internals: it only speaks HTTP to the issuer.

const MAX_STEPS = 20;

/** Cookie jar keyed by name+path; enough for one host over plain HTTP. */
export class CookieJar {
  #cookies = new Map();

  /** Stores the Set-Cookie headers of a response. */
  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq < 1) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = '/';
      let expired = value === '';
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=');
        const key = k.trim().toLowerCase();
        if (key === 'path') path = v.trim() || '/';
        if (key === 'max-age' && Number(v) <= 0) expired = true;
        if (key === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      const id = `${name};${path}`;
      if (expired) this.#cookies.delete(id);
      else this.#cookies.set(id, { name, value, path });
    }
  }

  /** Cookie header for a request to `url` (longest path first, RFC 6265). */
  header(url) {
    const { pathname } = new URL(url);
    return [...this.#cookies.values()]
      .filter(({ path }) => pathname === path || pathname.startsWith(path.endsWith('/') ? path : `${path}/`))
      .sort((a, b) => b.path.length - a.path.length)
      .map(({ name, value }) => `${name}=${value}`)
      .join('; ');
  }
}

/** One browser session: a cookie jar and a request helper. */
export class Browser {
  constructor(origin) {
    this.origin = origin;
    this.jar = new CookieJar();
  }

  /** GET or form-POST without following redirects. */
  async request(method, url, form) {
    const target = new URL(url, this.origin).href;
    const headers = { 'user-agent': 'grok-interop-control/1.0', accept: 'text/html' };
    const cookie = this.jar.header(target);
    if (cookie) headers.cookie = cookie;
    let body;
    if (form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(form).toString();
    }
    const response = await fetch(target, { method, headers, body, redirect: 'manual' });
    this.jar.store(response);
    const text = await response.text();
    const location = response.headers.get('location');
    return {
      url: target,
      status: response.status,
      location: location ? new URL(location, target).href : undefined,
      text,
    };
  }

  /** Follows redirects (as GET) until a non-redirect page. */
  async follow(page) {
    let current = page;
    for (let i = 0; i < MAX_STEPS && current.location && current.status >= 300 && current.status < 400; i += 1) {
      current = await this.request('GET', current.location);
    }
    return current;
  }
}

function unescapeHtml(s) {
  return s
    .replace(/&#x2F;/gi, '/')
    .replace(/&#x27;/gi, "'")
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/** Value of a hidden input `name` inside the HTML, if any. */
function inputValue(html, name) {
  const re = new RegExp(`<input[^>]*name="${name}"[^>]*value="([^"]*)"`, 'i');
  const m = html.match(re);
  return m ? unescapeHtml(m[1]) : undefined;
}

function formAction(html, formId) {
  const re = formId
    ? new RegExp(`<form[^>]*id="${formId.replace('.', '\\.')}"[^>]*action="([^"]*)"`, 'i')
    : /<form[^>]*action="([^"]*)"/i;
  const m = html.match(re);
  return m ? unescapeHtml(m[1]) : undefined;
}

function abortLink(html) {
  const m = html.match(/<a href="([^"]*\/abort)"/i);
  return m ? unescapeHtml(m[1]) : undefined;
}

/** Classifies one of oidc-provider's pages. */
export function classify(html) {
  if (/<h1>\s*Sign-in Success\s*<\/h1>/i.test(html)) return 'success';
  if (html.includes('id="op.deviceConfirmForm"')) return 'device-confirm';
  if (html.includes('id="op.deviceInputForm"')) {
    if (html.includes('The Sign-in request was interrupted')) return 'device-aborted';
    if (html.includes('The code you entered is incorrect')) return 'device-code-rejected';
    if (html.includes('There was an error processing your request')) return 'device-error';
    return 'device-input';
  }
  if (/name="prompt"\s+value="login"/.test(html)) return 'login';
  if (/name="prompt"\s+value="consent"/.test(html)) return 'consent';
  return 'unknown';
}

/** Error carrying the stage where the browser script stopped. */
export class FlowError extends Error {
  constructor(message, stage) {
    super(message);
    this.name = 'FlowError';
    this.stage = stage;
  }
}

/**
 * Acts as the user for one user code.
 *
 * @param {string} issuer
 * @param {object} opts
 * @param {string} opts.userCode code shown to the user by the device
 * @param {string} opts.account account to log in as
 * @param {'approve'|'deny'} opts.decision
 * @param {'confirm'|'login'|'consent'} [opts.denyAt] page where a denial clicks abort/cancel
 * @returns {Promise<{pages: string[]}>} pages seen, in order
 */
export async function actAsUser(issuer, { userCode, account, decision, denyAt = 'consent' }) {
  const browser = new Browser(issuer);
  const pages = [];
  const see = (page) => {
    const kind = classify(page.text);
    pages.push(kind);
    return kind;
  };

  // 1. Device verification page: the form carries an xsrf secret bound to the session cookie.
  let page = await browser.follow(await browser.request('GET', `${issuer}/device`));
  let kind = see(page);
  if (kind !== 'device-input') throw new FlowError(`unexpected page ${kind} at /device`, 'device-input');
  const inputAction = formAction(page.text, 'op.deviceInputForm');
  let xsrf = inputValue(page.text, 'xsrf');
  if (!inputAction || !xsrf) throw new FlowError('device input form not found', 'device-input');

  // 2. Submit the user code: the confirmation page shows the code again.
  page = await browser.follow(await browser.request('POST', inputAction, { xsrf, user_code: userCode }));
  kind = see(page);
  if (kind !== 'device-confirm') {
    throw new FlowError(`user code not accepted (${kind})`, 'device-confirm');
  }
  const confirmAction = formAction(page.text, 'op.deviceConfirmForm');
  xsrf = inputValue(page.text, 'xsrf');
  const shownCode = inputValue(page.text, 'user_code');
  if (!confirmAction || !xsrf || !shownCode) throw new FlowError('device confirm form not found', 'device-confirm');

  if (decision === 'deny' && denyAt === 'confirm') {
    // The "[ Abort ]" button of the confirmation page.
    page = await browser.follow(await browser.request('POST', confirmAction, { xsrf, user_code: shownCode, abort: 'yes' }));
    kind = see(page);
    if (kind !== 'device-aborted') throw new FlowError(`abort not acknowledged (${kind})`, 'confirm');
    return { pages };
  }

  // 3. Confirm: redirects into the login interaction.
  page = await browser.follow(await browser.request('POST', confirmAction, { xsrf, user_code: shownCode, confirm: 'yes' }));

  for (let step = 0; step < MAX_STEPS; step += 1) {
    kind = see(page);
    switch (kind) {
      case 'success':
        if (decision !== 'approve') throw new FlowError('device approved although denial was requested', 'success');
        return { pages };
      case 'device-aborted':
        if (decision !== 'deny') throw new FlowError('sign-in request was interrupted', 'interaction');
        return { pages };
      case 'login':
      case 'consent': {
        if (decision === 'deny' && denyAt === kind) {
          const abort = abortLink(page.text);
          if (!abort) throw new FlowError(`no cancel link on ${kind} page`, kind);
          page = await browser.follow(await browser.request('GET', abort));
          break;
        }
        const action = formAction(page.text);
        if (!action) throw new FlowError(`no form on ${kind} page`, kind);
        const form = kind === 'login'
          // devInteractions accept any password; `login` becomes the account id (sub).
          ? { prompt: 'login', login: account, password: 'interop' }
          : { prompt: 'consent' };
        page = await browser.follow(await browser.request('POST', action, form));
        break;
      }
      default:
        throw new FlowError(`unexpected page ${kind} (HTTP ${page.status} ${new URL(page.url).pathname})`, kind);
    }
  }
  throw new FlowError('too many steps', 'loop');
}
