// The chat webview: renders HTML the extension built (every value escaped there) and
// sends the user's actions back as messages. No network, no inline handlers (CSP).
(function () {
  const vscode = acquireVsCodeApi();
  const conversation = document.getElementById('conversation');
  const form = document.getElementById('prompt-form');
  const prompt = document.getElementById('prompt');
  const send = document.getElementById('send');
  const interrupt = document.getElementById('interrupt');
  const status = document.getElementById('status');
  const connection = document.getElementById('connection');
  const title = document.getElementById('title');
  // Tool calls the user opened or closed keep that state across re-renders.
  const toggled = new Map(Object.entries((vscode.getState() || {}).toggled || {}));

  conversation.addEventListener(
    'toggle',
    (event) => {
      const details = event.target;
      if (!(details instanceof HTMLDetailsElement) || details.dataset.restoring) return;
      toggled.set(details.dataset.key, details.open);
      vscode.setState({ toggled: Object.fromEntries(toggled) });
    },
    true,
  );

  function atBottom() {
    return conversation.scrollHeight - conversation.scrollTop - conversation.clientHeight < 40;
  }

  window.addEventListener('message', (event) => {
    const message = event.data;
    if (message.type === 'render') {
      const follow = atBottom();
      conversation.innerHTML = message.html;
      for (const details of conversation.querySelectorAll('details[data-key]')) {
        const open = toggled.get(details.dataset.key);
        if (open === undefined || open === details.open) continue;
        details.dataset.restoring = '1';
        details.open = open;
        setTimeout(() => delete details.dataset.restoring, 0);
      }
      title.textContent = message.title;
      status.textContent = message.status;
      status.className = 'status ' + message.status;
      connection.textContent = message.connection;
      const busy = message.status === 'running' || message.status === 'waiting';
      interrupt.disabled = !busy;
      const archived = message.status === 'archived';
      prompt.disabled = archived;
      send.disabled = archived;
      if (archived) prompt.placeholder = 'This session is archived (read-only). Fork it to continue.';
      if (follow) conversation.scrollTop = conversation.scrollHeight;
    } else if (message.type === 'error') {
      connection.textContent = message.text;
      if (typeof message.restore === 'string' && !prompt.value) prompt.value = message.restore;
    }
  });

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = prompt.value.trim();
    if (!text) return;
    vscode.postMessage({ type: 'prompt', text });
    prompt.value = '';
  });
  prompt.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  interrupt.addEventListener('click', () => vscode.postMessage({ type: 'interrupt' }));
  conversation.addEventListener('click', (event) => {
    const button = event.target instanceof Element ? event.target.closest('button.fork') : null;
    if (button) vscode.postMessage({ type: 'fork', at: Number(button.dataset.at) });
  });
  vscode.postMessage({ type: 'ready' });
})();
