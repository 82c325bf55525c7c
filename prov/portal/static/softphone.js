// hotdesk softphone: a small SIP user agent over WebSocket (RFC 7118) with
// WebRTC media. It registers as the user's number with the credential the
// portal mints for this session; the daemon bridges the media to desk
// phones. Digest is SHA-256 (RFC 8760; WebCrypto has no MD5). Two calls at
// most: a second incoming call rings as call waiting, and answering it holds
// the first, which comes back (held) when the second ends. Hold and resume are re-INVITEs (RFC 3264 §8.4: sendonly, then
// sendrecv), answered likewise when the other side holds; Transfer is a
// blind REFER (RFC 3515) to the other party, hung up once its NOTIFY says
// the new call was answered.
"use strict";
(function () {
  var panel = document.getElementById("softphone");
  if (!panel) { return; }
  var $ = function (id) { return document.getElementById(id); };
  var st = { state: "starting", registered: false, packetsSent: 0, packetsReceived: 0, error: "" };
  window.hotdeskSoftphone = st; // read by the browser test
  var labels = { starting: "Starting…", registering: "Connecting…", ready: "Ready", calling: "Calling…",
    ringing: "Incoming call", incall: "In call", held: "On hold", transferring: "Transferring…", offline: "Offline",
    failed: "Failed" };
  function setState(s, detail) {
    st.state = s;
    panel.dataset.state = s;
    $("sp-status").textContent = (labels[s] || s) + (detail ? " (" + detail + ")" : "");
    $("sp-call").hidden = !(s === "ready");
    $("sp-answer").hidden = s !== "ringing";
    $("sp-hangup").hidden = !(s === "calling" || s === "ringing" || s === "incall" || s === "held" || s === "transferring");
    $("sp-hold").hidden = s !== "incall";
    $("sp-resume").hidden = s !== "held";
    $("sp-transfer").hidden = s !== "incall" && s !== "held";
  }
  function rnd(n) {
    var a = new Uint8Array(n || 8); crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  var cfg, ws, viaTp = "WS", host = rnd(6) + ".invalid", cseq = 1, regCallID = rnd(12), regTag = rnd(6);
  var call = null; // the call shown: {dir, callID, localTag, remoteTag, cseq, pc, invite, routes, target, remoteURI}
  var second = null; // the other call: ringing (call waiting) or held behind the one shown
  function findCall(id) { return call && call.callID === id ? call : second && second.callID === id ? second : null; }
  function showWaiting() {
    st.waiting = !!(second && !second.pc);
    $("sp-waiting").hidden = !st.waiting;
    if (st.waiting) { $("sp-waiting-peer").textContent = "Call waiting from " + second.peer.replace(/^sip:/, "").split("@")[0]; }
    st.calls = (call ? 1 : 0) + (second ? 1 : 0);
  }

  function hdr(m, name) { var v = m.headers[name.toLowerCase()]; return v ? v[0] : ""; }
  function parse(text) {
    var i = text.indexOf("\r\n\r\n");
    var lines = text.slice(0, i).split("\r\n"), m = { headers: {}, list: [], body: text.slice(i + 4) };
    var first = lines.shift().split(" ");
    if (first[0] === "SIP/2.0") { m.status = parseInt(first[1], 10); m.reason = first.slice(2).join(" "); }
    else { m.method = first[0]; m.uri = first[1]; }
    lines.forEach(function (l) {
      var j = l.indexOf(":"), k = l.slice(0, j).trim().toLowerCase(), v = l.slice(j + 1).trim();
      var full = { v: "via", f: "from", t: "to", i: "call-id", m: "contact", l: "content-length", c: "content-type" }[k] || k;
      (m.headers[full] = m.headers[full] || []).push(v);
      m.list.push([full, v]);
    });
    var cs = hdr(m, "cseq").split(" ");
    m.cseq = parseInt(cs[0], 10); m.cseqMethod = cs[1];
    return m;
  }
  function build(first, headers, body) {
    body = body || "";
    var s = first + "\r\n";
    headers.forEach(function (h) { s += h[0] + ": " + h[1] + "\r\n"; });
    s += "Content-Length: " + new TextEncoder().encode(body).length + "\r\n\r\n" + body;
    return s;
  }
  function send(text) { if (ws && ws.readyState === 1) { ws.send(text); } }
  function via() { return ["Via", "SIP/2.0/" + viaTp + " " + host + ";branch=z9hG4bK" + rnd(8) + ";rport"]; }
  function aor() { return "sip:" + cfg.number + "@" + cfg.domain; }
  function contact() { return "<sip:" + cfg.username + "@" + host + ";transport=ws>"; }
  function tagOf(v) { var m = /;\s*tag=([^;>\s]+)/i.exec(v); return m ? m[1] : ""; }
  function uriOf(v) { var m = /<([^>]+)>/.exec(v); return m ? m[1] : v.split(";")[0]; }

  // Digest (RFC 7616 / 8760), SHA-256 with qop=auth.
  function hex(buf) { return Array.prototype.map.call(new Uint8Array(buf), function (b) { return ("0" + b.toString(16)).slice(-2); }).join(""); }
  function sha256(s) { return crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)).then(hex); }
  function param(ch, name) { var m = new RegExp(name + '="?([^",]*)"?', "i").exec(ch); return m ? m[1] : ""; }
  function digest(challenges, method, uri) {
    var ch = challenges.filter(function (c) { return /algorithm="?SHA-256"?/i.test(c); })[0];
    if (!ch) { return Promise.reject(new Error("no SHA-256 challenge")); }
    var realm = param(ch, "realm"), nonce = param(ch, "nonce"), opaque = param(ch, "opaque"), cnonce = rnd(8), nc = "00000001";
    return Promise.all([sha256(cfg.username + ":" + realm + ":" + cfg.password), sha256(method + ":" + uri)]).then(function (h) {
      return sha256(h[0] + ":" + nonce + ":" + nc + ":" + cnonce + ":auth:" + h[1]);
    }).then(function (resp) {
      return 'Digest username="' + cfg.username + '", realm="' + realm + '", nonce="' + nonce + '", uri="' + uri +
        '", response="' + resp + '", algorithm=SHA-256, cnonce="' + cnonce + '", qop=auth, nc=' + nc +
        (opaque ? ', opaque="' + opaque + '"' : "");
    });
  }

  // REGISTER, refreshed before it expires.
  var regAuth = null, regTimer = null;
  function register(auth) {
    var h = [via(), ["Max-Forwards", "70"], ["From", "<" + aor() + ">;tag=" + regTag], ["To", "<" + aor() + ">"],
      ["Call-ID", regCallID], ["CSeq", (cseq++) + " REGISTER"], ["Contact", contact()], ["Expires", "300"],
      ["User-Agent", "hotdesk-softphone"]];
    if (auth) { h.push(["Authorization", auth]); }
    send(build("REGISTER sip:" + cfg.domain + " SIP/2.0", h));
  }
  function onRegisterResponse(m) {
    if (m.status === 401 && !regAuth) {
      regAuth = true;
      digest(m.headers["www-authenticate"] || [], "REGISTER", "sip:" + cfg.domain).then(register, fail);
      return;
    }
    regAuth = null;
    if (m.status === 200) {
      st.registered = true;
      if (st.state === "registering" || st.state === "starting") { setState("ready"); }
      clearTimeout(regTimer);
      regTimer = setTimeout(function () { register(); }, 240000);
      return;
    }
    st.registered = false;
    setState("failed", m.status + " " + m.reason);
  }

  function fail(e) { st.error = String(e); setState("failed", st.error); }

  // Media: a peer connection with the microphone, complete ICE before the
  // SDP goes out (SIP carries one description, no trickle).
  function newPC() {
    var pc = new RTCPeerConnection({ iceServers: cfg.ice_servers || [] });
    pc.ontrack = function (e) { $("sp-audio").srcObject = e.streams[0] || new MediaStream([e.track]); };
    return navigator.mediaDevices.getUserMedia({ audio: true, video: false }).then(function (s) {
      s.getTracks().forEach(function (t) { pc.addTrack(t, s); });
      return pc;
    });
  }
  function gathered(pc) {
    return new Promise(function (resolve) {
      if (pc.iceGatheringState === "complete") { resolve(); return; }
      var t = setTimeout(resolve, 5000);
      pc.addEventListener("icegatheringstatechange", function () {
        if (pc.iceGatheringState === "complete") { clearTimeout(t); resolve(); }
      });
    });
  }
  function countPackets() {
    if (!call || !call.pc) { return; }
    call.pc.getStats().then(function (r) {
      r.forEach(function (s) {
        if (s.type === "inbound-rtp" && s.kind === "audio") { st.packetsReceived = s.packetsReceived; }
        if (s.type === "outbound-rtp" && s.kind === "audio") { st.packetsSent = s.packetsSent; }
      });
    });
  }
  setInterval(countPackets, 500);

  // Outgoing call.
  function dial(target) {
    if (!target) { return; }
    if (target.indexOf("@") < 0) { target = target + "@" + cfg.domain; }
    call = { dir: "out", callID: rnd(12), localTag: rnd(6), cseq: cseq++, target: "sip:" + target, remoteURI: "sip:" + target,
      routes: [], peer: "sip:" + target };
    $("sp-peer").hidden = false;
    $("sp-peer").textContent = "To " + target.split("@")[0];
    setState("calling");
    newPC().then(function (pc) {
      call.pc = pc;
      return pc.createOffer().then(function (o) { return pc.setLocalDescription(o); }).then(function () { return gathered(pc); });
    }).then(function () { sendInvite(); }).catch(fail);
  }
  function sendInvite(auth) {
    var h = [via(), ["Max-Forwards", "70"], ["From", "<" + aor() + ">;tag=" + call.localTag], ["To", "<" + call.target + ">"],
      ["Call-ID", call.callID], ["CSeq", call.cseq + " INVITE"], ["Contact", contact()],
      ["Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY"], ["Content-Type", "application/sdp"], ["User-Agent", "hotdesk-softphone"]];
    if (auth) { h.push(["Proxy-Authorization", auth]); }
    call.invite = build("INVITE " + call.target + " SIP/2.0", h, call.pc.localDescription.sdp);
    call.inviteVia = h[0][1];
    send(call.invite);
  }
  function ackFor(m, branchVia, uri, routes) {
    var h = [branchVia ? ["Via", branchVia] : via(), ["Max-Forwards", "70"], ["From", "<" + aor() + ">;tag=" + call.localTag],
      ["To", hdr(m, "to")], ["Call-ID", call.callID], ["CSeq", m.cseq + " ACK"]];
    (routes || []).forEach(function (r) { h.push(["Route", r]); });
    send(build("ACK " + uri + " SIP/2.0", h));
  }
  // The parties of the call's dialog as this side names them.
  function localParty(c) { return c.dir === "out" ? "<" + aor() + ">;tag=" + c.localTag : hdr(c.req, "to") + ";tag=" + c.localTag; }
  function remoteParty(c) { return c.dir === "out" ? c.remoteTo : hdr(c.req, "from"); }
  function inDialog(c, method, extra, body) {
    var h = [via(), ["Max-Forwards", "70"], ["From", localParty(c)], ["To", remoteParty(c)], ["Call-ID", c.callID],
      ["CSeq", (cseq++) + " " + method]];
    c.routes.forEach(function (r) { h.push(["Route", r]); });
    (extra || []).forEach(function (x) { h.push(x); });
    send(build(method + " " + c.remoteURI + " SIP/2.0", h, body));
    return parseInt(h[5][1], 10);
  }

  // Hold (sendonly) and resume (sendrecv): a new offer in a re-INVITE.
  function reinvite(dir, then) {
    var c = call;
    if (!c || !c.pc || c.reinvite) { return; }
    c.reinvite = { dir: dir, then: then };
    c.pc.getTransceivers().forEach(function (t) { t.direction = dir; });
    c.pc.createOffer().then(function (o) { return c.pc.setLocalDescription(o); })
      .then(function () { return gathered(c.pc); })
      .then(function () {
        c.reinvite.cseq = inDialog(c, "INVITE", [["Contact", contact()], ["Content-Type", "application/sdp"]],
          c.pc.localDescription.sdp);
      }).catch(fail);
  }
  function onReinviteResponse(m) {
    var c = findCall(hdr(m, "call-id"));
    if (!c || !c.reinvite || m.cseq !== c.reinvite.cseq || m.status < 200) { return; }
    if (m.status < 300) {
      var h = [via(), ["Max-Forwards", "70"], ["From", localParty(c)], ["To", remoteParty(c)], ["Call-ID", c.callID],
        ["CSeq", m.cseq + " ACK"]];
      c.routes.forEach(function (r) { h.push(["Route", r]); });
      send(build("ACK " + c.remoteURI + " SIP/2.0", h));
    }
    if (c.reinvite.done) { return; } // a retransmitted 2xx: ACKed again
    c.reinvite.done = true;
    var dir = c.reinvite.dir;
    if (m.status >= 300) {
      c.pc.setLocalDescription({ type: "rollback" }).then(function () {
        c.pc.getTransceivers().forEach(function (t) { t.direction = dir === "sendonly" ? "sendrecv" : "sendonly"; });
        c.reinvite = null;
        setState(st.state, m.status + " " + m.reason);
      }, fail);
      return;
    }
    var then = c.reinvite.then;
    c.pc.setRemoteDescription({ type: "answer", sdp: m.body }).then(function () {
      c.reinvite = null;
      c.held = dir !== "sendrecv";
      if (c === call) { st.held = c.held; setState(st.held ? "held" : "incall"); }
      if (then) { then(); }
    }, fail);
  }

  // The other side's new offer (its hold or resume, or a transfer's new party).
  function onReinvite(req) {
    var c = findCall(hdr(req, "call-id"));
    if (!c || !c.pc || c.reinvite) { respond(req, 491, "Request Pending"); return; }
    c.pc.setRemoteDescription({ type: "offer", sdp: req.body })
      .then(function () { return c.pc.createAnswer(); })
      .then(function (a) { return c.pc.setLocalDescription(a); })
      .then(function () { return gathered(c.pc); })
      .then(function () {
        respond(req, 200, "OK", [["Contact", contact()], ["Content-Type", "application/sdp"],
          ["Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY"]], c.pc.localDescription.sdp);
        c.remoteHeld = /a=(sendonly|inactive)/.test(req.body);
        if (c === call) { st.remoteHeld = c.remoteHeld; $("sp-peer").dataset.held = st.remoteHeld ? "remote" : ""; }
      }).catch(function (e) { respond(req, 488, "Not Acceptable Here"); fail(e); });
  }

  // Blind transfer: REFER the other party to target; its NOTIFYs report the
  // new call (RFC 3515 §2.4.5), and its answer ends ours.
  function transfer(target) {
    var c = call;
    if (!c || !target || c.refer) { return; }
    if (target.indexOf("@") < 0) { target = target + "@" + cfg.domain; }
    c.refer = { cseq: inDialog(c, "REFER", [["Refer-To", "<sip:" + target + ">"], ["Referred-By", "<" + aor() + ">"],
      ["Contact", contact()]]) };
    setState("transferring");
  }
  function onReferResponse(m) {
    var c = call;
    if (!c || !c.refer || m.cseq !== c.refer.cseq || m.status < 200) { return; }
    if (m.status >= 300) { c.refer = null; setState(st.held ? "held" : "incall", "transfer " + m.status + " " + m.reason); }
  }
  function onNotify(req) {
    respond(req, 200, "OK");
    var c = call;
    if (!c || !c.refer || c.callID !== hdr(req, "call-id")) { return; }
    var frag = /^SIP\/2\.0 (\d{3})/.exec(req.body || "");
    if (!frag || parseInt(frag[1], 10) < 200) { return; }
    if (parseInt(frag[1], 10) < 300) { st.transferred = true; hangup(); return; }
    c.refer = null;
    setState(st.held ? "held" : "incall", "transfer " + frag[1]);
  }

  function onInviteResponse(m) {
    var r = findCall(hdr(m, "call-id"));
    if (r && r.reinvite && m.cseq === r.reinvite.cseq) { onReinviteResponse(m); return; }
    if (!call || call.dir !== "out" || hdr(m, "call-id") !== call.callID) { return; }
    if (m.status < 200) { if (m.status === 180) { setState("calling", "ringing"); } return; }
    if (m.status === 407 && !call.authTried) {
      call.authTried = true;
      ackFor(m, call.inviteVia, call.target, []);
      call.cseq = cseq++;
      digest(m.headers["proxy-authenticate"] || [], "INVITE", call.target).then(sendInvite, fail);
      return;
    }
    if (m.status >= 300) {
      ackFor(m, call.inviteVia, call.target, []);
      endCall(m.status + " " + m.reason);
      return;
    }
    call.remoteTag = tagOf(hdr(m, "to"));
    call.remoteTo = hdr(m, "to");
    call.remoteURI = uriOf(hdr(m, "contact")) || call.target;
    call.routes = (m.headers["record-route"] || []).slice().reverse();
    ackFor(m, null, call.remoteURI, call.routes);
    if (call.answered) { return; } // a retransmitted 2xx: ACKed again
    call.answered = true;
    call.pc.setRemoteDescription({ type: "answer", sdp: m.body }).then(function () { setState("incall"); }, fail);
  }

  // Incoming call.
  function respond(req, code, reason, extra, body) {
    var h = [];
    req.list.forEach(function (x) {
      if (x[0] === "via" || x[0] === "record-route") { h.push([x[0] === "via" ? "Via" : "Record-Route", x[1]]); }
    });
    var to = hdr(req, "to"), c = findCall(hdr(req, "call-id"));
    if (code > 100 && !tagOf(to) && c) { to += ";tag=" + c.localTag; }
    h.push(["From", hdr(req, "from")], ["To", to], ["Call-ID", hdr(req, "call-id")], ["CSeq", hdr(req, "cseq")]);
    (extra || []).forEach(function (x) { h.push(x); });
    send(build("SIP/2.0 " + code + " " + reason, h, body));
  }
  function onInvite(req) {
    if (tagOf(hdr(req, "to"))) { onReinvite(req); return; }
    if (findCall(hdr(req, "call-id"))) { return; } // a retransmission
    if (call && second) { respond(req, 486, "Busy Here"); return; }
    var c = { dir: "in", callID: hdr(req, "call-id"), localTag: rnd(6), req: req, remoteTag: tagOf(hdr(req, "from")),
      remoteURI: uriOf(hdr(req, "contact")), routes: req.headers["record-route"] || [], peer: uriOf(hdr(req, "from")) };
    if (call) {
      // Call waiting: it rings beside the call in progress.
      second = c;
      respond(req, 180, "Ringing");
      showWaiting();
      return;
    }
    call = c;
    respond(req, 180, "Ringing");
    $("sp-peer").hidden = false;
    $("sp-peer").textContent = "From " + call.peer.replace(/^sip:/, "").split("@")[0];
    setState("ringing");
  }
  // Answer the waiting call: the call in progress is held first, then the
  // two swap places.
  function answerWaiting() {
    if (!second || second.pc) { return; }
    var swap = function () {
      var c = second; second = call; call = c;
      showWaiting();
      $("sp-peer").textContent = "From " + call.peer.replace(/^sip:/, "").split("@")[0];
      answer();
    };
    if (call && call.pc && !call.held && (call.answered || call.dir === "in")) { reinvite("sendonly", swap); } else { swap(); }
  }
  function declineWaiting() {
    if (!second || second.pc) { return; }
    respond(second.req, 486, "Busy Here");
    second = null;
    showWaiting();
  }
  function answer() {
    var c = call;
    if (!c || c.dir !== "in" || c.pc) { return; }
    newPC().then(function (pc) {
      c.pc = pc;
      return pc.setRemoteDescription({ type: "offer", sdp: c.req.body });
    }).then(function () { return c.pc.createAnswer(); })
      .then(function (a) { return c.pc.setLocalDescription(a); })
      .then(function () { return gathered(c.pc); })
      .then(function () {
        respond(c.req, 200, "OK", [["Contact", contact()], ["Content-Type", "application/sdp"],
          ["Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY"]], c.pc.localDescription.sdp);
        c.answered = true;
        st.held = false;
        setState("incall");
        showWaiting();
      }).catch(fail);
  }

  // Hang up: CANCEL while our INVITE rings, BYE once answered, 486 to
  // an incoming call not answered.
  function hangup() {
    if (!call) { return; }
    if (call.dir === "in" && st.state === "ringing") { respond(call.req, 486, "Busy Here"); endCall(); return; }
    if (call.dir === "out" && !call.answered) {
      send(build("CANCEL " + call.target + " SIP/2.0", [["Via", call.inviteVia], ["Max-Forwards", "70"],
        ["From", "<" + aor() + ">;tag=" + call.localTag], ["To", "<" + call.target + ">"], ["Call-ID", call.callID],
        ["CSeq", call.cseq + " CANCEL"]]));
      endCall();
      return;
    }
    inDialog(call, "BYE");
    endCall();
  }
  function endCall(why) {
    if (call && call.pc) { call.pc.close(); }
    call = null;
    st.held = false; st.remoteHeld = false;
    if (second) {
      // The other call comes forward: held, or still ringing.
      call = second; second = null;
      showWaiting();
      st.held = !!call.held;
      $("sp-peer").hidden = false;
      $("sp-peer").textContent = (call.dir === "in" ? "From " : "To ") + call.peer.replace(/^sip:/, "").split("@")[0];
      setState(call.pc ? (call.held ? "held" : "incall") : "ringing", why);
      return;
    }
    showWaiting();
    $("sp-peer").hidden = true;
    setState(st.registered ? "ready" : "offline", why);
  }

  // The call behind the one shown ended (its BYE or CANCEL).
  function dropSecond(id) {
    if (!second || second.callID !== id) { return; }
    if (second.pc) { second.pc.close(); }
    second = null;
    showWaiting();
  }

  function onMessage(text) {
    var m = parse(text);
    if (m.status) {
      if (m.cseqMethod === "REGISTER") { onRegisterResponse(m); }
      if (m.cseqMethod === "INVITE") { onInviteResponse(m); }
      if (m.cseqMethod === "REFER") { onReferResponse(m); }
      return;
    }
    switch (m.method) {
      case "INVITE": onInvite(m); break;
      case "ACK": break;
      case "BYE":
        respond(m, 200, "OK");
        if (call && call.callID === hdr(m, "call-id")) { endCall(); } else { dropSecond(hdr(m, "call-id")); }
        break;
      case "CANCEL":
        respond(m, 200, "OK");
        if (call && call.dir === "in" && call.callID === hdr(m, "call-id")) {
          respond(call.req, 487, "Request Terminated");
          endCall();
        } else if (second && !second.pc && second.callID === hdr(m, "call-id")) {
          respond(second.req, 487, "Request Terminated");
          dropSecond(second.callID);
        }
        break;
      case "OPTIONS": respond(m, 200, "OK"); break;
      case "NOTIFY": onNotify(m); break;
      default: respond(m, 405, "Method Not Allowed");
    }
  }

  $("sp-call").addEventListener("click", function () { dial($("sp-target").value.trim()); });
  $("sp-answer").addEventListener("click", answer);
  $("sp-hangup").addEventListener("click", hangup);
  $("sp-answer-waiting").addEventListener("click", answerWaiting);
  $("sp-decline-waiting").addEventListener("click", declineWaiting);
  $("sp-hold").addEventListener("click", function () { reinvite("sendonly"); });
  $("sp-resume").addEventListener("click", function () { reinvite("sendrecv"); });
  $("sp-transfer").addEventListener("click", function () { transfer($("sp-target").value.trim()); });
  setState("starting");
  fetch("/api/v1/me/softphone", { method: "POST", headers: { "X-CSRF-Token": panel.dataset.csrf }, credentials: "same-origin" })
    .then(function (r) { return r.ok ? r.json() : r.json().then(function (e) { throw new Error(e.error || r.status); }); })
    .then(function (c) {
      cfg = c;
      if (/^wss:/i.test(c.ws_url)) { viaTp = "WSS"; }
      $("sp-number").textContent = "— your number " + c.number;
      setState("registering");
      ws = new WebSocket(c.ws_url.replace("{host}", location.hostname), "sip");
      ws.onopen = function () { register(); };
      ws.onmessage = function (e) { onMessage(e.data); };
      ws.onclose = function () {
        st.registered = false;
        if (second && second.pc) { second.pc.close(); }
        second = null;
        if (call) { endCall(); }
        setState("offline");
      };
    }).catch(fail);
}());
