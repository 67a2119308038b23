// The panel opened as a Telegram Mini App: Telegram puts its signed launch data in the page's
// fragment (#tgWebAppData=…); post it back so the server checks it with the bot token.
(function () {
  var launch = new URLSearchParams(window.location.hash.slice(1));
  var app = window.Telegram && window.Telegram.WebApp;
  var data = launch.get("tgWebAppData") || (app && app.initData) || "";
  var form = document.getElementById("tg-login");
  if (!data || !form) {
    var note = document.getElementById("tg-missing");
    if (note) note.hidden = false;
    return;
  }
  form.elements.init_data.value = data;
  form.submit();
})();
