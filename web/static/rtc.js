/* Shared by the caller page and the interpreter console: the camera, the
   signalling WebSocket (docs/protocol.md) and the peer connection.
   Plain ES2020, no build step; exposes window.signvideoRtc. */
(function () {
  "use strict";

  // EN 301 549 asks for at least 20 fps and 320x240 for sign language;
  // 30 fps and 640x480 are recommended.
  const SIGNING_VIDEO = {
    width: { ideal: 640 },
    height: { ideal: 480 },
    frameRate: { ideal: 30, min: 20 },
  };

  const KEEPALIVE_MS = 25000;

  async function getUserMediaForSigning(audio) {
    try {
      return await navigator.mediaDevices.getUserMedia({ video: SIGNING_VIDEO, audio: audio });
    } catch (err) {
      // A camera that cannot reach 20 fps is still better than no call.
      if (err && err.name === "OverconstrainedError") {
        return navigator.mediaDevices.getUserMedia({ video: true, audio: audio });
      }
      throw err;
    }
  }

  /* Camera and microphone; if the microphone is refused or missing, camera
     alone (deaf callers may have no use for one). Rejects with the camera's
     error when there is no usable camera. */
  async function openCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      const err = new Error("This browser cannot use a camera on this page.");
      err.name = "NotSupportedError";
      throw err;
    }
    try {
      return await getUserMediaForSigning(true);
    } catch (withAudio) {
      return getUserMediaForSigning(false);
    }
  }

  function stopStream(stream) {
    if (!stream) return;
    for (const track of stream.getTracks()) track.stop();
  }

  /* A sentence a caller can act on, for a getUserMedia error. */
  function describeCameraError(err) {
    switch (err && err.name) {
      case "NotAllowedError":
      case "SecurityError":
        return "Your browser is not allowing this page to use your camera. " +
          "To fix this, select the padlock or camera symbol next to the web address, " +
          "choose Allow for the camera, then select Try the camera again or reload the page. " +
          "On a phone, also check in your phone's settings that your browser may use the camera.";
      case "NotFoundError":
      case "OverconstrainedError":
        return "We could not find a camera on this device. " +
          "Connect a camera, or use a phone, tablet or computer that has one.";
      case "NotReadableError":
      case "AbortError":
        return "Your camera is being used by another app, or it is not responding. " +
          "Close other apps that use the camera, such as video calls, then try again.";
      case "NotSupportedError":
      case "TypeError":
        return "This browser cannot use your camera on this page. " +
          "Try an up-to-date version of Chrome, Edge, Firefox or Safari.";
      default:
        return "Your camera could not be started. Reload the page to try again.";
    }
  }

  /* Opens the signalling socket at `path` (ws: or wss: to match the page)
     and calls handlers[msg.type](msg) for each message. handlers.open and
     handlers.close, if present, are called when the socket opens and closes
     (close gets the CloseEvent). */
  function openSignalling(path, handlers) {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(scheme + "//" + window.location.host + path);
    let nextId = 1;
    let keepalive = null;

    function send(type, fields) {
      if (socket.readyState !== WebSocket.OPEN) return false;
      const message = Object.assign({ type: type, id: String(nextId++) }, fields || {});
      socket.send(JSON.stringify(message));
      return true;
    }

    socket.addEventListener("open", function () {
      keepalive = window.setInterval(function () { send("ping"); }, KEEPALIVE_MS);
      if (handlers.open) handlers.open();
    });
    socket.addEventListener("close", function (event) {
      window.clearInterval(keepalive);
      if (handlers.close) handlers.close(event);
    });
    socket.addEventListener("message", function (event) {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (err) {
        console.warn("signvideo: ignoring a message that is not JSON", event.data);
        return;
      }
      if (!message || typeof message.type !== "string") return;
      const handler = Object.prototype.hasOwnProperty.call(handlers, message.type)
        ? handlers[message.type] : null;
      if (message.type === "open" || message.type === "close" || !handler) {
        if (message.type !== "pong") console.warn("signvideo: no handler for", message.type);
        return;
      }
      try {
        handler(message);
      } catch (err) {
        console.error("signvideo: handling " + message.type + " failed", err);
      }
    });

    return {
      send: send,
      close: function () { socket.close(1000); },
      get isOpen() { return socket.readyState === WebSocket.OPEN; },
    };
  }

  async function preferFrameRate(sender) {
    // Signing needs movement more than detail: when bandwidth is short, keep
    // the frame rate and let the resolution drop.
    try {
      const parameters = sender.getParameters();
      parameters.degradationPreference = "maintain-framerate";
      // 640x480 at 30 frames a second needs about 1 Mbit/s; more buys little
      // for signing and would crowd out the frame rate on a thin uplink.
      for (const encoding of parameters.encodings || []) {
        encoding.maxFramerate = 30;
        encoding.maxBitrate = 1500000;
      }
      await sender.setParameters(parameters);
    } catch (err) {
      // Not every browser supports this; the call works without it.
    }
  }

  /* One peer connection for one call.
       onCandidate(candidateInit or null) - send it to the other side
       onRemoteStream(stream)             - show it
       onConnectionState(state)           - pc.connectionState changed */
  function createPeer(options) {
    const pc = new RTCPeerConnection({
      iceServers: options.iceServers || [],
      // "relay": media only through TURN (set by the service for a call).
      iceTransportPolicy: options.iceTransportPolicy === "relay" ? "relay" : "all",
    });
    const pendingCandidates = [];
    const senders = [];

    // Real-time text (T.140) travels on its own data channel: the side that
    // makes the offer opens it; the other side takes it when it arrives.
    if (options.onTextChannel) {
      if (options.createTextChannel) {
        const channel = pc.createDataChannel("rtt", { protocol: T140, ordered: true });
        // After createPeer has returned, so that the caller knows its peer.
        queueMicrotask(function () { options.onTextChannel(channel); });
      } else {
        pc.addEventListener("datachannel", function (event) {
          if (event.channel.protocol === T140) options.onTextChannel(event.channel);
        });
      }
    }

    pc.addEventListener("icecandidate", function (event) {
      options.onCandidate(event.candidate ? event.candidate.toJSON() : null);
    });
    pc.addEventListener("track", function (event) {
      const stream = event.streams && event.streams[0]
        ? event.streams[0] : new MediaStream([event.track]);
      options.onRemoteStream(stream);
    });
    pc.addEventListener("connectionstatechange", function () {
      if (pc.connectionState === "connected") {
        // Some browsers only accept send parameters once negotiated.
        for (const sender of senders) preferFrameRate(sender);
      }
      if (options.onConnectionState) options.onConnectionState(pc.connectionState);
    });

    async function addCandidateNow(candidate) {
      try {
        await pc.addIceCandidate(candidate || undefined);
      } catch (err) {
        console.warn("signvideo: could not add an ICE candidate", err);
      }
    }

    return {
      pc: pc,

      addLocalStream: function (stream) {
        for (const track of stream.getTracks()) {
          if (track.kind === "video" && "contentHint" in track) track.contentHint = "motion";
          const sender = pc.addTrack(track, stream);
          if (track.kind === "video") {
            senders.push(sender);
            preferFrameRate(sender);
          }
        }
      },

      /* Interpreter side: returns the offer to send. */
      makeOffer: async function () {
        const offer = await pc.createOffer();
        await pc.setLocalDescription(offer);
        return { type: pc.localDescription.type, sdp: pc.localDescription.sdp };
      },

      /* Caller side: applies the offer, returns the answer to send. */
      answer: async function (description) {
        await pc.setRemoteDescription(description);
        await this.flushCandidates();
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        return { type: pc.localDescription.type, sdp: pc.localDescription.sdp };
      },

      /* Interpreter side: applies the caller's answer. */
      acceptAnswer: async function (description) {
        await pc.setRemoteDescription(description);
        await this.flushCandidates();
      },

      /* Candidates can arrive before the description they belong to. */
      addRemoteCandidate: async function (candidate) {
        if (!pc.remoteDescription) {
          pendingCandidates.push(candidate);
          return;
        }
        await addCandidateNow(candidate);
      },

      flushCandidates: async function () {
        while (pendingCandidates.length) await addCandidateNow(pendingCandidates.shift());
      },

      close: function () {
        pc.close();
      },
    };
  }

  function readIceServers(element) {
    try {
      const servers = JSON.parse(element.dataset.iceServers || "[]");
      return Array.isArray(servers) ? servers : [];
    } catch (err) {
      return [];
    }
  }

  /* Shows a stream in a <video>. If the browser refuses to autoplay it with
     sound, it plays muted: seeing the other person matters most. */
  function showStream(video, stream) {
    if (video.srcObject === stream) return;
    video.srcObject = stream;
    if (!stream) return;
    video.play().catch(function (err) {
      if (err && err.name === "NotAllowedError" && !video.muted) {
        video.muted = true;
        video.play().catch(function () {});
      }
    });
  }

  /* Real-time text, ITU-T T.140 over a WebRTC data channel (RFC 8865):
     characters are sent as they are typed (within this page's input event,
     well under T.140's 300 ms), a backspace is U+0008 and a new line
     U+2028. `elements`: input (a textarea for one's own text), log (where
     the other side's text appears), state (a short status line). */
  const T140 = "t140";
  const BACKSPACE = "\u0008";
  const LINE_SEPARATOR = "\u2028";

  function realTimeText(elements) {
    let channel = null;
    let sent = [];          // code points of one's own text as the other side has it
    let lines = [""];       // the other side's text, line by line

    let isOpen = false;

    /* `elements.held`, if given, says why typing must wait though the text
       is connected (an interpreter taking over, until the call is theirs),
       or returns null. */
    function heldBecause() {
      return elements.held ? elements.held() : null;
    }

    function setOpen(open) {
      isOpen = open;
      const held = open ? heldBecause() : null;
      elements.input.disabled = !open || held !== null;
      elements.state.textContent = held !== null ? held : open
        ? "Text is connected: what you type is sent as you type it."
        : "Text connects when the call does.";
    }

    function render() {
      const log = elements.log;
      // Completed lines stay as they are; only the last line is rewritten.
      while (log.children.length < lines.length) log.appendChild(document.createElement("p"));
      while (log.children.length > lines.length) log.removeChild(log.lastChild);
      for (let i = 0; i < lines.length; i++) {
        if (log.children[i].textContent !== lines[i]) log.children[i].textContent = lines[i];
      }
      log.hidden = lines.length === 1 && lines[0] === "";
      if (elements.empty) elements.empty.hidden = !log.hidden;
      log.scrollTop = log.scrollHeight;
    }

    function receive(text) {
      for (const ch of Array.from(text)) {
        if (ch === BACKSPACE) {
          const last = Array.from(lines[lines.length - 1]);
          if (last.length) lines[lines.length - 1] = last.slice(0, -1).join("");
          else if (lines.length > 1) lines.pop();
        } else if (ch === LINE_SEPARATOR || ch === "\n") {
          lines.push("");
        } else if (ch === "\r" || ch === "\ufeff" || ch < " ") {
          continue;   // carriage returns, T.140's start mark and other controls
        } else {
          lines[lines.length - 1] += ch;
        }
      }
      render();
      if (elements.onReceived) elements.onReceived();
    }

    /* What to send to turn the text the other side has into the text typed:
       backspaces back to where they differ, then the rest. */
    function sendChanges() {
      if (!channel || channel.readyState !== "open" || heldBecause() !== null) return;
      const now = Array.from(elements.input.value.replace(/\r\n?/g, "\n"));
      let same = 0;
      while (same < sent.length && same < now.length && sent[same] === now[same]) same++;
      const text = BACKSPACE.repeat(sent.length - same) +
        now.slice(same).join("").replace(/\n/g, LINE_SEPARATOR);
      if (!text) return;
      channel.send(text);
      sent = now;
    }

    elements.input.addEventListener("input", sendChanges);
    setOpen(false);
    render();

    return {
      /* A new data channel for the call (after every new peer connection). */
      attach: function (newChannel) {
        // The text carries on where it was: both sides keep what they have.
        channel = newChannel;
        function opened() {
          if (channel !== newChannel) return;
          setOpen(true);
          sendChanges();
        }
        // A channel that opened before it was attached (after a handover).
        if (newChannel.readyState === "open") opened();
        else newChannel.addEventListener("open", opened);
        newChannel.addEventListener("close", function () {
          if (channel === newChannel) setOpen(false);
        });
        newChannel.addEventListener("message", function (event) {
          if (channel === newChannel && typeof event.data === "string") receive(event.data);
        });
      },
      detach: function () {
        channel = null;
        setOpen(false);
      },
      /* What `elements.held` says has changed. */
      refresh: function () {
        setOpen(isOpen);
        sendChanges();
      },
      /* A new call: nothing typed, nothing heard. */
      reset: function () {
        channel = null;
        sent = [];
        lines = [""];
        elements.input.value = "";
        setOpen(false);
        render();
      },
    };
  }

  /* The pre-call check: a short test call to the service, which measures the
     video it receives and answers with {frames_per_second, width, height,
     round_trip_ms, verdict}. Rejects with an Error whose message says, in
     plain words, what went wrong. */
  async function checkVideo(stream, ice) {
    const pc = new RTCPeerConnection({
      iceServers: ice.servers || [],
      iceTransportPolicy: ice.policy === "relay" ? "relay" : "all",
    });
    try {
      for (const track of stream.getVideoTracks()) {
        if ("contentHint" in track) track.contentHint = "motion";
        preferFrameRate(pc.addTrack(track, stream));
      }
      const channel = pc.createDataChannel("check");
      const result = new Promise(function (resolve, reject) {
        const timer = window.setTimeout(function () {
          reject(new Error("The check did not finish. Your connection may be too slow or blocked."));
        }, 20000);
        channel.addEventListener("message", function (event) {
          let data;
          try { data = JSON.parse(event.data); } catch (err) { return; }
          if (data.type === "ping") channel.send(JSON.stringify({ type: "pong", id: data.id }));
          if (data.type === "result") {
            window.clearTimeout(timer);
            resolve(data);
          }
        });
      });
      await pc.setLocalDescription(await pc.createOffer());
      // No trickle: wait for the candidates (at most 3 s) and send them all.
      await new Promise(function (resolve) {
        if (pc.iceGatheringState === "complete") { resolve(); return; }
        const done = window.setTimeout(resolve, 3000);
        pc.addEventListener("icegatheringstatechange", function () {
          if (pc.iceGatheringState === "complete") { window.clearTimeout(done); resolve(); }
        });
      });
      const response = await fetch("/api/v1/video-check", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }),
      });
      if (!response.ok) {
        let why = "The check could not start.";
        try { why = (await response.json()).error || why; } catch (err) { /* keep */ }
        throw new Error(why);
      }
      await pc.setRemoteDescription(await response.json());
      return await result;
    } finally {
      pc.close();
    }
  }

  /* Quality during a call, measured every 2 s from the peer connection's
     statistics of the video received: frames a second (from frames decoded),
     picture size, round trip, packet loss. Never any content. onSample gets
     {fps, width, height, rtt_ms, loss_percent, warning}; warning is
     "low_frame_rate" after two samples under 20 frames a second (what
     signing needs), "unstable" while the connection is disconnected or
     losing over a tenth of its packets, else null. */
  const SIGNING_FLOOR_FPS = 20;

  function watchQuality(pc, onSample) {
    let previous = null;
    let lowInARow = 0;
    async function sample() {
      if (pc.connectionState === "closed") { stop(); return; }
      let stats;
      try { stats = await pc.getStats(); } catch (err) { return; }
      let video = null;
      let pair = null;
      stats.forEach(function (s) {
        if (s.type === "inbound-rtp" && s.kind === "video") video = s;
        if (s.type === "transport" && s.selectedCandidatePairId) {
          pair = stats.get(s.selectedCandidatePairId) || pair;
        }
      });
      if (!video) return;
      const now = { at: performance.now(), frames: video.framesDecoded || 0,
        lost: video.packetsLost || 0, received: video.packetsReceived || 0 };
      const before = previous;
      previous = now;
      if (!before || now.frames === 0) return;
      const seconds = (now.at - before.at) / 1000;
      const fps = seconds > 0 ? Math.max(0, (now.frames - before.frames) / seconds) : 0;
      const lost = Math.max(0, now.lost - before.lost);
      const got = Math.max(0, now.received - before.received);
      const loss = lost + got > 0 ? (100 * lost) / (lost + got) : 0;
      lowInARow = fps < SIGNING_FLOOR_FPS ? lowInARow + 1 : 0;
      const unstable = pc.connectionState === "disconnected" || loss > 10;
      onSample({
        fps: Math.round(fps * 10) / 10,
        width: video.frameWidth || null,
        height: video.frameHeight || null,
        rtt_ms: pair && typeof pair.currentRoundTripTime === "number"
          ? Math.round(pair.currentRoundTripTime * 1000) : null,
        loss_percent: Math.round(loss * 10) / 10,
        warning: unstable ? "unstable" : lowInARow >= 2 ? "low_frame_rate" : null,
      });
    }
    const timer = window.setInterval(sample, 2000);
    function stop() { window.clearInterval(timer); }
    return { stop: stop };
  }

  /* The visible warning for a quality sample, in plain words (or "" for none). */
  function describeQuality(sample, whose) {
    if (!sample || !sample.warning) return "";
    if (sample.warning === "unstable") {
      return "The connection is unstable, so the video may freeze. You can type in the text box while it recovers.";
    }
    return whose + " video is not smooth enough for signing (" + Math.round(sample.fps) +
      " frames a second; signing needs at least 20). More light, being nearer the Wi-Fi, or " +
      "closing other apps may help. You can also type in the text box.";
  }

  /* Sends samples to the service in batches, and at once when a warning
     starts or ends. send(type, fields) is the page's signalling sender. */
  function qualityReporter(send) {
    let batch = [];
    let lastWarning = null;
    return function (callId, sample) {
      batch.push(sample);
      if (batch.length >= 3 || sample.warning !== lastWarning) {
        send("quality", { call_id: callId, samples: batch });
        batch = [];
      }
      lastWarning = sample.warning;
    };
  }

  function askBeforeLeaving(event) {
    event.preventDefault();
    event.returnValue = "";
  }

  /* While someone is queued or in a call, closing the tab or following a link
     by mistake would drop them: make the browser ask first. */
  function guardLeaving(on) {
    if (on) window.addEventListener("beforeunload", askBeforeLeaving);
    else window.removeEventListener("beforeunload", askBeforeLeaving);
  }

  /* A token kept across reloads of this tab (a caller's place, a hearing
     person's seat in a call); with storage blocked (private mode) it is
     simply not kept. */
  function tabToken(key) {
    return {
      save: function (token) {
        try { window.sessionStorage.setItem(key, String(token)); } catch (err) { /* blocked */ }
      },
      load: function () {
        try { return window.sessionStorage.getItem(key); } catch (err) { return null; }
      },
      clear: function () {
        try { window.sessionStorage.removeItem(key); } catch (err) { /* blocked */ }
      },
    };
  }

  /* For tests and for people debugging a call in the console. */
  function exposeState(fields) {
    if (!window.signvideo) window.signvideo = { pc: null, state: "starting" };
    Object.assign(window.signvideo, fields);
  }

  window.signvideoRtc = {
    openCamera: openCamera,
    stopStream: stopStream,
    showStream: showStream,
    describeCameraError: describeCameraError,
    openSignalling: openSignalling,
    createPeer: createPeer,
    realTimeText: realTimeText,
    checkVideo: checkVideo,
    watchQuality: watchQuality,
    describeQuality: describeQuality,
    qualityReporter: qualityReporter,
    readIceServers: readIceServers,
    exposeState: exposeState,
    guardLeaving: guardLeaving,
    tabToken: tabToken,
  };
})();
