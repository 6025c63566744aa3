// karamail: the passkey ceremony (WebAuthn). The only script of the site; every other
// page and form works without it. Forms marked data-passkey="register" or "login" are
// taken over here when the browser has the WebAuthn API; without it they lead to a
// page that says what is needed.
(function () {
  "use strict";

  function toBytes(base64url) {
    var base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    var binary = atob(base64 + "===".slice((base64.length + 3) % 4));
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  // One step of the ceremony: a form post with the page's CSRF token, JSON back.
  function post(form, path, fields) {
    var body = new URLSearchParams();
    body.set("csrf", form.querySelector("input[name=csrf]").value);
    Object.keys(fields).forEach(function (name) { body.set(name, fields[name]); });
    return fetch(path, { method: "POST", body: body, credentials: "same-origin" })
      .then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (data) {
          if (!response.ok) throw new Error(data.error || "画面の有効期限が切れたか、通信に失敗しました。画面を再読み込みして、もう一度お試しください。");
          return data;
        });
      });
  }

  function say(form, message) {
    var line = form.querySelector(".passkey-error");
    line.textContent = message;
    line.hidden = false;
    line.focus();
  }

  function failed(form, error) {
    // The member closed the browser's dialog or it timed out: say it plainly.
    var name = error && error.name;
    if (name === "NotAllowedError" || name === "AbortError") {
      say(form, "パスキーの操作が取り消されたか、時間切れになりました。もう一度お試しください。");
    } else if (name === "InvalidStateError") {
      say(form, "この端末のパスキーは既に登録されています。");
    } else if (name && name !== "Error") {
      say(form, "このブラウザではパスキーを使えませんでした。ログインIDとパスワードをお使いください。");
    } else {
      say(form, error.message);
    }
  }

  function register(form) {
    var fields = {
      name: form.querySelector("input[name=name]").value,
      current_password: form.querySelector("input[name=current_password]").value
    };
    return post(form, "/passkeys/register/options", fields)
      .then(function (options) {
        var key = options.publicKey;
        key.challenge = toBytes(key.challenge);
        key.user.id = toBytes(key.user.id);
        (key.excludeCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
        return navigator.credentials.create({ publicKey: key });
      })
      .then(function (made) {
        var credential = {
          id: made.id,
          rawId: toBase64url(made.rawId),
          type: made.type,
          response: {
            attestationObject: toBase64url(made.response.attestationObject),
            clientDataJSON: toBase64url(made.response.clientDataJSON)
          },
          extensions: {}
        };
        return post(form, "/passkeys/register/finish", { credential: JSON.stringify(credential) });
      });
  }

  function logIn(form) {
    return post(form, "/login/passkey/options", {})
      .then(function (options) {
        var key = options.publicKey;
        key.challenge = toBytes(key.challenge);
        (key.allowCredentials || []).forEach(function (c) { c.id = toBytes(c.id); });
        return navigator.credentials.get({ publicKey: key });
      })
      .then(function (used) {
        var response = used.response;
        var credential = {
          id: used.id,
          rawId: toBase64url(used.rawId),
          type: used.type,
          response: {
            authenticatorData: toBase64url(response.authenticatorData),
            clientDataJSON: toBase64url(response.clientDataJSON),
            signature: toBase64url(response.signature),
            userHandle: response.userHandle ? toBase64url(response.userHandle) : null
          },
          extensions: {}
        };
        return post(form, "/login/passkey/finish", { credential: JSON.stringify(credential) });
      });
  }

  var ceremonies = { register: register, login: logIn };
  if (!window.PublicKeyCredential || !navigator.credentials) return;
  document.querySelectorAll("form[data-passkey]").forEach(function (form) {
    var ceremony = ceremonies[form.getAttribute("data-passkey")];
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var button = form.querySelector("button");
      button.disabled = true;
      ceremony(form)
        .then(function (done) { window.location.assign(done.redirect); })
        .catch(function (error) { failed(form, error); })
        .then(function () { button.disabled = false; });
    });
  });
})();
