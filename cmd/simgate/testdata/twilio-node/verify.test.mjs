// Twilio's npm client (twilio, pinned in package-lock.json) against a real
// simgate serve on virtual modems. cmd/simgate TestTwilioNodeClient starts
// the daemon and runs this with:
//   SIMGATE_URL         the daemon's API
//   SIM_URL             the virtual modems' control API (the handsets' inboxes)
//   VERIFY_SERVICE_SID  the default service
//   TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN   a key made by simgate apikey create --twilio
//   ADMIN_ACCOUNT_SID, TWILIO_API_KEY, TWILIO_API_SECRET   an admin key made with --twilio=api-key
// The only change an application makes is where the client sends Verify's
// requests: the Verify domain's baseUrl.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import twilio from 'twilio';

const env = process.env;
const service = env.VERIFY_SERVICE_SID;

function client(username, secret, accountSid) {
  const c = twilio(username, secret, { accountSid });
  c.verify.baseUrl = env.SIMGATE_URL;
  return c;
}

const app = client(env.TWILIO_ACCOUNT_SID, env.TWILIO_AUTH_TOKEN);
const verify = app.verify.v2.services(service);

// code waits for the nth SMS to the handset `to` and returns its code.
async function code(to, nth) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await fetch(`${env.SIM_URL}/handsets/${encodeURIComponent(to)}/inbox`);
    const inbox = await res.json();
    if (inbox.length >= nth) {
      const m = inbox[nth - 1].text.match(/\b\d{4,10}\b/);
      assert.ok(m, `no code in ${inbox[nth - 1].text}`);
      return m[0];
    }
    assert.ok(Date.now() < deadline, `no SMS ${nth} to ${to}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// wrong returns a code of the same length that is not code.
const wrong = (code) => String((Number(code[0]) + 1) % 10) + code.slice(1);

// rejects checks that promise fails with Twilio's error status and code.
async function rejects(promise, status, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.status, status, `status of ${err}`);
    assert.equal(err.code, code, `code of ${err}`);
    assert.equal(err.moreInfo, `https://www.twilio.com/docs/errors/${code}`);
    assert.ok(err.message);
    return true;
  });
}

test('a verification: create, wrong code, fetch, right code, check after approval', async () => {
  const to = '+4915161111111';
  const v = await verify.verifications.create({ to, channel: 'sms' });
  assert.match(v.sid, /^VE[0-9a-f]{32}$/);
  assert.equal(v.status, 'pending');
  assert.equal(v.to, to);
  assert.equal(v.channel, 'sms');
  assert.equal(v.serviceSid, service);
  assert.equal(v.accountSid, env.TWILIO_ACCOUNT_SID);
  assert.equal(v.valid, false);
  assert.equal(v.sendCodeAttempts.length, 1);
  assert.ok(v.dateCreated instanceof Date && Math.abs(Date.now() - v.dateCreated) < 60_000, `dateCreated ${v.dateCreated}`);
  const c = await code(to, 1);

  let check = await verify.verificationChecks.create({ to, code: wrong(c) });
  assert.equal(check.status, 'pending');
  assert.equal(check.valid, false);

  const fetched = await verify.verifications(v.sid).fetch();
  assert.equal(fetched.sid, v.sid);
  assert.equal(fetched.status, 'pending');

  check = await verify.verificationChecks.create({ to, code: c });
  assert.equal(check.status, 'approved');
  assert.equal(check.valid, true);
  assert.equal(check.sid, v.sid);

  await rejects(verify.verificationChecks.create({ to, code: c }), 404, 20404);
});

test('cancel', async () => {
  const v = await verify.verifications.create({ to: '+4915162222222', channel: 'sms' });
  const canceled = await verify.verifications(v.sid).update({ status: 'canceled' });
  assert.equal(canceled.status, 'canceled');
  await rejects(verify.verifications(v.sid).fetch(), 404, 20404);
});

test('too many checks: 60202', async () => {
  const to = '+4915163333333';
  const v = await verify.verifications.create({ to, channel: 'sms' });
  const c = await code(to, 1);
  for (let i = 0; i < 5; i++) {
    const check = await verify.verificationChecks.create({ to, code: wrong(c) });
    assert.equal(check.valid, false);
  }
  await rejects(verify.verificationChecks.create({ to, code: c }), 429, 60202);
  await rejects(verify.verificationChecks.create({ verificationSid: v.sid, code: c }), 429, 60202);
});

test('too many sends: 60203', async () => {
  const to = '+4915164444444';
  for (let i = 0; i < 5; i++) {
    await verify.verifications.create({ to, channel: 'sms' });
  }
  await rejects(verify.verifications.create({ to, channel: 'sms' }), 429, 60203);
});

test('unknown SID, a disabled channel, bad credentials', async () => {
  await rejects(verify.verifications('VE' + '0'.repeat(32)).fetch(), 404, 20404);
  await rejects(verify.verifications.create({ to: '+4915165555555', channel: 'call' }), 400, 60223);
  const bad = client(env.TWILIO_ACCOUNT_SID, 'x'.repeat(32));
  await rejects(bad.verify.v2.services(service).verifications.create({ to: '+4915165555555', channel: 'sms' }), 401, 20003);
});

test('services, with an API key', async () => {
  const admin = client(env.TWILIO_API_KEY, env.TWILIO_API_SECRET, env.ADMIN_ACCOUNT_SID);
  const shop = await admin.verify.v2.services.create({ friendlyName: 'Shop', codeLength: 8 });
  assert.match(shop.sid, /^VA[0-9a-f]{32}$/);
  assert.equal(shop.friendlyName, 'Shop');
  assert.equal(shop.codeLength, 8);
  assert.equal(shop.accountSid, env.ADMIN_ACCOUNT_SID);
  const fetched = await app.verify.v2.services(shop.sid).fetch();
  assert.equal(fetched.friendlyName, 'Shop');
  const listed = await app.verify.v2.services.list();
  assert.deepEqual(listed.map((s) => s.sid).sort(), [service, shop.sid].sort());
  const to = '+4915166666666';
  await app.verify.v2.services(shop.sid).verifications.create({ to, channel: 'sms' });
  assert.equal((await code(to, 1)).length, 8);
  await rejects(app.verify.v2.services.create({ friendlyName: 'Nope' }), 403, 20403);
});
