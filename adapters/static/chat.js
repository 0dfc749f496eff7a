// The botkit web chat page: talks to the session API next to it (api/session, api/chat, api/history,
// api/events), keeps the session token in localStorage, and shows what the bot starts as it arrives.
(() => {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const log = $("log"), scroller = $("scroller"), empty = $("empty"), typing = $("typing");
  const status = $("status"), form = $("composer"), input = $("text"), restart = $("restart");
  const storageKey = "botkit.web.token:" + location.pathname;
  const quickKey = "botkit.web.quick:" + location.pathname;
  const api = (name) => new URL("api/" + name, document.baseURI);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  let token = localStorage.getItem(storageKey);
  let listening = null;   // the AbortController of the open event stream
  let pending = 0;        // chat requests waiting for their answer
  let quick = readQuick(); // the bot's last quick replies, offered until the user answers (the history keeps only the text)

  // -- talking to the API ------------------------------------------------------------------------

  async function call(method, name, body) {
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(api(name), {
      method, headers, cache: "no-store", body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await response.json(); } catch (_) { /* 204, or not JSON */ }
    return { status: response.status, data, headers: response.headers };
  }

  function remember(value) {
    token = value;
    if (value) localStorage.setItem(storageKey, value);
    else localStorage.removeItem(storageKey);
  }

  function readQuick() {
    try { return JSON.parse(localStorage.getItem(quickKey) || "null"); } catch (_) { return null; }
  }

  function forget(notice) {
    remember(null);
    clearChoices();
    if (listening) listening.abort();
    listening = null;
    if (notice) say(notice);
  }

  async function ensureSession() {
    if (token) return true;
    const answer = await call("POST", "session", {});
    if (answer.status !== 201) {
      say(errorText(answer, "The chat is not available right now."));
      return false;
    }
    remember(answer.data.token);
    listen();
    return true;
  }

  async function loadHistory() {
    if (!token) return;
    const answer = await call("GET", "history");
    if (answer.status === 200) {
      render(answer.data.messages);
    } else if (answer.status === 401) {
      forget("Your previous conversation has ended. Your next message starts a new one.");
      render([]);
    }
  }

  async function send(body, shown) {
    const id = randomId();
    say("");
    clearChoices();
    const bubble = add({ dir: "in", type: "text", text: shown, at: Date.now() / 1000 });
    setPending(+1);
    try {
      if (!(await ensureSession())) return unsend(bubble, body);
      let answer = await call("POST", "chat", { ...body, id });
      if (answer.status === 401) {
        forget();
        if (!(await ensureSession())) return unsend(bubble, body);
        answer = await call("POST", "chat", { ...body, id });
      }
      if (answer.status === 200) {
        if (answer.data.duplicate) await loadHistory();
        else answer.data.messages.forEach((message) => add({ dir: "out", ...message }, true));
        if (answer.data.error) say(answer.data.error);
      } else if (answer.status === 429) {
        const wait = answer.headers.get("Retry-After") || "a few";
        unsend(bubble, body, `You are sending messages too fast. Try again in ${wait} seconds.`);
      } else {
        unsend(bubble, body, errorText(answer, "The bot could not take that message."));
      }
    } catch (_) {
      unsend(bubble, body, "Could not reach the bot. Check your connection and try again.");
    } finally {
      setPending(-1);
    }
  }

  function unsend(bubble, body, notice) {
    bubble.remove();
    if (body.text !== undefined && body.payload === undefined && !input.value) input.value = body.text;
    if (!log.children.length) empty.hidden = false;
    if (notice) say(notice);
  }

  // Messages the bot starts arrive as server-sent events. EventSource cannot send the token in a header,
  // so the stream is read with fetch; each (re)connection reads the history again to catch up.
  async function listen() {
    if (!token || listening) return;
    const control = new AbortController();
    listening = control;
    let delay = 1000;
    while (token && listening === control) {
      try {
        const response = await fetch(api("events"), {
          headers: { Authorization: "Bearer " + token, Accept: "text/event-stream" },
          cache: "no-store", signal: control.signal,
        });
        if (response.status === 401) {
          forget("Your conversation has ended. Your next message starts a new one.");
          return;
        }
        if (!response.ok || !response.body) throw new Error("event stream: HTTP " + response.status);
        delay = 1000;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            onEvent(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch (_) {
        if (control.signal.aborted) return;
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 30000);
    }
  }

  function onEvent(block) {
    let type = "message", data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) type = line.slice(6).trim();
      else if (line.startsWith("data:")) data += line.slice(5).trim();
    }
    if (type === "ready" && !pending) loadHistory();
    if (type === "message" && data) {
      clearChoices();
      add({ dir: "out", ...JSON.parse(data) }, true);
    }
  }

  // -- showing messages --------------------------------------------------------------------------

  function render(messages) {
    log.replaceChildren();
    messages.forEach((message) => add(message, false));
    const last = messages[messages.length - 1];
    if (quick && last && last.dir === "out" && last.type === "quick_replies" && last.text === quick.text) {
      log.lastElementChild.append(choices(quick.replies, "Suggested replies", true));
    }
    empty.hidden = log.children.length > 0;
  }

  // One message: the user's ("in") or the bot's ("out"), from an answer, an event or the history.
  function add(message, live) {
    const item = element("li", "message " + (message.dir === "in" ? "in" : "out"));
    item.append(element("span", "visually-hidden", message.dir === "in" ? "You said:" : "The bot said:"));
    const bubble = element("div", "bubble");
    const imageUrl = message.type === "image" ? safeUrl(message.url || message.text) : null;
    if (imageUrl) {
      const figure = element("figure");
      const image = element("img");
      image.src = imageUrl;
      image.alt = message.caption || "An image from the bot";
      image.loading = "lazy";
      figure.append(image);
      if (message.caption) figure.append(element("figcaption", "", message.caption));
      bubble.append(figure);
    } else if (message.type === "card" || message.type === "cards") {
      bubble.classList.add("cards");
      const list = Array.isArray(message.cards) ? message.cards : [message];
      list.forEach((card) => bubble.append(cardOf(card)));
    } else if ((message.type === "file" || message.type === "location") && safeUrl(message.url)) {
      const link = element("a", "", message.type === "file" ? (message.name || message.url) : (message.text || message.url));
      link.href = safeUrl(message.url);
      link.target = "_blank";
      link.rel = "noopener noreferrer";
      if (message.type === "file") link.setAttribute("download", "");
      bubble.append(link);
    } else {
      bubble.textContent = message.text ?? message.payload ?? message.url ?? "";
    }
    item.append(bubble);
    if (message.type === "buttons" && Array.isArray(message.buttons)) item.append(choices(message.buttons, "Options"));
    if (live && message.type === "quick_replies" && Array.isArray(message.replies)) {
      item.append(choices(message.replies, "Suggested replies", true));
      quick = { text: message.text, replies: message.replies };
      localStorage.setItem(quickKey, JSON.stringify(quick));
    }
    const previous = log.lastElementChild;
    const dir = message.dir === "in" ? "in" : "out";
    if (message.at) {
      item.dataset.at = message.at;
      const grouped = previous && previous.classList.contains(dir) && message.at - Number(previous.dataset.at) < 300;
      if (!grouped) item.prepend(stamp(message.at));
    }
    log.append(item);
    empty.hidden = true;
    scroller.scrollTop = scroller.scrollHeight;
    return item;
  }

  // A card: its image, title, subtitle and buttons (a card from the history has only its title).
  function cardOf(card) {
    const box = element("article", "card");
    const imageUrl = card.image ? safeUrl(card.image) : null;
    if (imageUrl) {
      const image = element("img");
      image.src = imageUrl;
      image.alt = "";
      image.loading = "lazy";
      box.append(image);
    }
    box.append(element("strong", "", card.title ?? card.text ?? ""));
    if (card.subtitle) box.append(element("p", "", card.subtitle));
    if (Array.isArray(card.buttons) && card.buttons.length) box.append(choices(card.buttons, card.title || "Options"));
    return box;
  }

  function choices(list, label, quick) {
    const group = element("div", "choices" + (quick ? " quick" : ""));
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", label);
    for (const choice of list) {
      const url = choice.url ? safeUrl(choice.url) : null;
      if (url) {
        const link = element("a", "", choice.title);
        link.href = url;
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        group.append(link);
      } else if (choice.payload !== undefined) {
        const button = element("button", "", choice.title);
        button.type = "button";
        button.addEventListener("click", () => {
          send({ payload: choice.payload, text: choice.title }, choice.title);
          input.focus();
        });
        group.append(button);
      }
    }
    return group;
  }

  function clearChoices() {
    log.querySelectorAll(".choices.quick").forEach((group) => group.remove());
    quick = null;
    localStorage.removeItem(quickKey);
  }

  function stamp(seconds) {
    const when = new Date(seconds * 1000);
    const time = element("time", "", when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
    time.dateTime = when.toISOString();
    return time;
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function safeUrl(value) {
    try {
      const url = new URL(value, document.baseURI);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  function setPending(change) {
    pending += change;
    typing.hidden = pending === 0;
    if (pending) scroller.scrollTop = scroller.scrollHeight;
  }

  function say(text) {
    status.textContent = text;
  }

  function errorText(answer, fallback) {
    return (answer.data && answer.data.error) ? answer.data.error : fallback;
  }

  function randomId() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // -- wiring ------------------------------------------------------------------------------------

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    input.value = "";
    send({ text }, text);
  });

  restart.addEventListener("click", async () => {
    if (token) {
      try { await call("DELETE", "session"); } catch (_) { /* the token is dropped either way */ }
    }
    forget();
    render([]);
    say("");
    input.focus();
  });

  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && token && !pending) loadHistory();
  });

  if (token) {
    loadHistory();
    listen();
  }
  input.focus();
})();
