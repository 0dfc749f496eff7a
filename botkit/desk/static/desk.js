"use strict";
// The agent desk: the desk API with the secret the agent typed (kept for this tab only), and its event
// stream read with fetch (so that the secret travels in a header, not in the URL).
(() => {
  const $ = (id) => document.getElementById(id);
  const store = window.sessionStorage;
  const state = { agent: store.getItem("desk.agent") || "", secret: store.getItem("desk.secret") || "",
                  list: [], open: null, seen: new Set(), stream: null };

  async function api(path, body) {
    const response = await fetch("api/" + path, {
      method: body === undefined ? "GET" : "POST",
      headers: { "Authorization": "Bearer " + state.secret, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
    if (response.status === 401) { signOut("The desk secret was refused."); throw new Error("401"); }
    const data = await response.json().catch(() => ({}));
    return { status: response.status, data };
  }

  const path = (key) => "conversations/" + encodeURIComponent(key);
  const when = (seconds) => new Date(seconds * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });

  function signOut(message) {
    store.removeItem("desk.secret");
    state.secret = "";
    if (state.stream) state.stream.abort();
    $("desk").hidden = true; $("me").hidden = true; $("sign-out").hidden = true;
    $("sign-in").hidden = false;
    $("sign-in-error").textContent = message || "";
    $("secret").focus();
  }

  async function start() {
    $("sign-in").hidden = true; $("desk").hidden = false;
    $("me").hidden = false; $("me").textContent = "Signed in as " + state.agent;
    $("sign-out").hidden = false;
    await refreshList();
    listen();
  }

  async function refreshList() {
    const { status, data } = await api("conversations");
    if (status !== 200) return;
    state.list = data.conversations;
    renderList();
  }

  function renderList() {
    const list = $("conversations");
    list.replaceChildren();
    $("empty").hidden = state.list.length > 0;
    $("count").textContent = state.list.length ? "(" + state.list.length + ")" : "";
    for (const c of state.list) {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      if (state.open === c.session_key) button.setAttribute("aria-current", "true");
      const who = document.createElement("span"); who.className = "who"; who.textContent = c.session_key;
      const tag = document.createElement("span"); tag.className = "tag";
      tag.textContent = c.channel || "";
      who.append(tag);
      if (c.claimed_by) {
        const held = document.createElement("span");
        held.className = "tag" + (c.claimed_by === state.agent ? " mine" : "");
        held.textContent = c.claimed_by === state.agent ? "yours" : "held by " + c.claimed_by;
        who.append(held);
      }
      const why = document.createElement("span"); why.className = "why"; why.textContent = c.reason || "no reason given";
      const since = document.createElement("span"); since.className = "when"; since.textContent = "waiting since " + when(c.waiting_since);
      button.append(who, why, since);
      button.addEventListener("click", () => openConversation(c.session_key, true));
      item.append(button);
      list.append(item);
    }
  }

  function entryItem(entry) {
    const item = document.createElement("li");
    item.className = entry.dir === "out" ? "out" + (entry.agent ? " agent" : "") : "in";
    const by = document.createElement("span"); by.className = "by";
    by.textContent = (entry.dir === "in" ? "Customer" : entry.agent ? "Agent " + entry.agent : "Bot") + " · " + when(entry.at);
    item.append(by, document.createTextNode(entry.text || entry.payload || "(" + entry.type + ")"));
    return item;
  }

  function addEntry(entry) {
    const mark = entry.seq !== undefined ? entry.seq : entry.at + ":" + entry.text;
    if (state.seen.has(mark)) return;
    state.seen.add(mark);
    const log = $("transcript");
    log.append(entryItem(entry));
    log.scrollTop = log.scrollHeight;
  }

  function say(text, bad) {
    const status = $("status");
    status.textContent = text;
    status.classList.toggle("bad", !!bad);
  }

  async function openConversation(key, focus) {
    const { status, data } = await api(path(key));
    if (status !== 200) { say("This conversation is no longer waiting for a human.", true); await refreshList(); return; }
    state.open = key;
    state.seen = new Set();
    $("nothing-open").hidden = true; $("open").hidden = false;
    $("desk").classList.add("reading");
    $("conversation-title").textContent = key;
    $("transcript").replaceChildren();
    for (const entry of data.messages) addEntry(entry);
    showHolder(data);
    renderList();
    if (focus) $("conversation").focus();
  }

  function showHolder(c) {
    $("conversation-meta").textContent = (c.channel || "") + " · " + (c.reason || "no reason given") +
      (c.claimed_by ? " · held by " + (c.claimed_by === state.agent ? "you" : c.claimed_by) : " · unclaimed");
    const mine = c.claimed_by === state.agent;
    $("claim").hidden = mine;
    $("claim").disabled = !!c.claimed_by && !mine;
    $("reply-text").disabled = !mine; $("send").disabled = !mine;
    $("handback").disabled = !!c.claimed_by && !mine;
  }

  function closeConversation() {
    state.open = null;
    $("open").hidden = true; $("nothing-open").hidden = false;
    $("desk").classList.remove("reading");
    renderList();
  }

  async function claim() {
    const key = state.open;
    const { status, data } = await api(path(key) + "/claim", { agent: state.agent });
    if (status === 409) { say("Another agent holds this conversation.", true); }
    else if (status !== 200) { say(data.error || "Could not claim it.", true); }
    else { say("You hold this conversation: the customer sees your replies."); }
    await openConversation(key, false);
    if (status === 200) $("reply-text").focus();
  }

  async function reply(event) {
    event.preventDefault();
    const box = $("reply-text");
    const text = box.value.trim();
    if (!text) return;
    $("send").disabled = true;
    const { status, data } = await api(path(state.open) + "/reply", { agent: state.agent, text });
    $("send").disabled = false;
    if (status === 200) { box.value = ""; say("Sent."); box.focus(); }
    else say(status === 409 ? "Another agent holds this conversation." : data.error || "Not sent.", true);
  }

  async function handBack() {
    const key = state.open;
    const { status, data } = await api(path(key) + "/handback", { agent: state.agent });
    if (status !== 200) { say(data.error || "Could not hand it back.", true); return; }
    closeConversation();
    await refreshList();
    $("nothing-open").textContent = key + " is back with the bot.";
  }

  function onNotice(notice) {
    if (notice.kind === "message") {
      if (notice.session_key === state.open && notice.entry) addEntry(notice.entry);
      return;
    }
    refreshList();
    if (notice.session_key !== state.open) return;
    if (notice.kind === "handback") {
      closeConversation();
      $("nothing-open").textContent = notice.session_key + " went back to the bot.";
    } else if (notice.kind === "claim") {
      openConversation(notice.session_key, false);
    }
  }

  async function listen() {
    const controller = new AbortController();
    state.stream = controller;
    try {
      const response = await fetch("api/events", { headers: { "Authorization": "Bearer " + state.secret },
                                                   signal: controller.signal, cache: "no-store" });
      if (response.status === 401) { signOut("The desk secret was refused."); return; }
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const chunk = buffer.slice(0, end); buffer = buffer.slice(end + 2);
          const data = chunk.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          if (chunk.startsWith("event: ready")) { document.body.dataset.live = "yes"; continue; }
          if (data) onNotice(JSON.parse(data));
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    document.body.dataset.live = "no";
    if (!state.secret) return;
    setTimeout(async () => {  // catch up on what the stream missed, then listen again
      await refreshList();
      if (state.open) await openConversation(state.open, false);
      listen();
    }, 1000);
  }

  $("sign-in").addEventListener("submit", async (event) => {
    event.preventDefault();
    state.agent = $("agent").value.trim();
    state.secret = $("secret").value;
    store.setItem("desk.agent", state.agent);
    store.setItem("desk.secret", state.secret);
    $("secret").value = "";
    try { await start(); } catch (error) { /* signOut already said why */ }
  });
  $("sign-out").addEventListener("click", () => signOut(""));
  $("claim").addEventListener("click", claim);
  $("handback").addEventListener("click", handBack);
  $("reply").addEventListener("submit", reply);
  $("reply-text").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("reply").requestSubmit(); }
  });
  $("back").addEventListener("click", () => { closeConversation(); $("conversations").querySelector("button")?.focus(); });
  $("agent").value = state.agent;
  if (state.secret && state.agent) start().catch(() => {}); else $(state.agent ? "secret" : "agent").focus();
})();
