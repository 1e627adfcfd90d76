// Live updates: the push WebSocket first, polling /state while it is down.

import { api, ApiError } from "./api.js";

const POLL_MS = 3000;
const MAX_BACKOFF_MS = 15000;
// The unit closes the channel with this code when the session no longer opens it.
const REVOKED = 4001;

export class LiveFeed {
  /**
   * @param {{onReadings: Function, onStatus: Function, onSettings: Function,
   *          onBalancing: Function, onBalancingEvent: Function, onPoll: Function,
   *          onMode: Function, onRevoked: Function}} handlers
   */
  constructor(handlers) {
    this.handlers = handlers;
    this.socket = null;
    this.pollTimer = null;
    this.retryTimer = null;
    this.backoff = 1000;
    this.running = false;
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.connect();
  }

  stop() {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.stopPolling();
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close();
      this.socket = null;
    }
  }

  connect() {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${window.location.host}/api/v1/push`);
    this.socket = socket;
    this.handlers.onMode("connecting");
    socket.onmessage = (event) => this.dispatch(event.data);
    socket.onopen = () => {
      this.backoff = 1000;
      this.stopPolling();
      this.handlers.onMode("live");
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (!this.running) return;
      if (event.code === REVOKED) {
        // The session ended on the unit (logout elsewhere, expiry, factory reset).
        this.stop();
        this.handlers.onRevoked();
        return;
      }
      this.startPolling();
      this.retryTimer = setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, MAX_BACKOFF_MS);
    };
  }

  dispatch(raw) {
    let message;
    try {
      message = JSON.parse(raw);
    } catch {
      return;
    }
    if (message.type === "readings") this.handlers.onReadings(message.data);
    else if (message.type === "status") this.handlers.onStatus(message.data);
    else if (message.type === "settings") this.handlers.onSettings(message.data);
    else if (message.type === "balancing") this.handlers.onBalancing(message.data);
    else if (message.type === "balancing_event") this.handlers.onBalancingEvent(message.data);
  }

  startPolling() {
    if (this.pollTimer) return;
    this.handlers.onMode("polling");
    const poll = async () => {
      try {
        const state = await api.state();
        this.handlers.onReadings(state.readings);
        this.handlers.onStatus(state.status);
        // What the socket would push besides (the open Chargers tab's state).
        this.handlers.onPoll();
      } catch (err) {
        if (err instanceof ApiError && err.status === 401) {
          this.stop();
          return;
        }
      }
    };
    poll();
    this.pollTimer = setInterval(poll, POLL_MS);
  }

  stopPolling() {
    clearInterval(this.pollTimer);
    this.pollTimer = null;
  }
}
