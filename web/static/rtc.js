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
    readIceServers: readIceServers,
    exposeState: exposeState,
    guardLeaving: guardLeaving,
  };
})();
