import { afterEach, describe, expect, it } from 'vitest';

import { type App, mountApp } from '../src/app';
import type { Device } from '../src/bindings/Device';
import { Ticker } from '../src/countdown';
import { $, $$, fakeBackend, settle, tid } from './backend';
import { client } from './fixtures';

let app: App | null = null;
let backend: ReturnType<typeof fakeBackend> | null = null;

afterEach(async () => {
  await app?.dispose();
  app = null;
  backend?.reset();
  backend = null;
  document.body.innerHTML = '';
  delete document.documentElement.dataset.listReady;
});

const IOT = client({ id: 'client-iot', name: 'plant', provider: 'iot' });

function device(over: Partial<Device> = {}): Device {
  return {
    id: 'dev-1',
    name: 'pump-1',
    device_id: 'abc-0001',
    client_key: 'client-iot',
    client_name: 'plant',
    has_secret: true,
    created_at: '2026-12-01T00:00:00Z',
    sandbox: false,
    ...over,
  };
}

async function start(b: ReturnType<typeof fakeBackend>): Promise<App> {
  backend = b;
  app = mountApp(document.body, { ticker: new Ticker({ doc: null }) });
  await app.ready;
  await settle();
  return app;
}

describe('IoT devices in the window', () => {
  it('are listed under the IoT accounts, with their last check, and no secret is asked for back', async () => {
    let devices = [
      device(),
      device({
        id: 'dev-2',
        name: 'pump-2',
        last_check: {
          at: '2026-12-01T01:00:00Z',
          outcome: 'invalid_credentials',
          message: "The IoT platform rejected the device's Client ID or Token (HTTP 401).",
        },
      }),
    ];
    const b = fakeBackend({
      clients: [IOT],
      handlers: {
        list_devices: () => devices,
        check_device: (a) => {
          devices = devices.map((d) =>
            d.id === a.id
              ? { ...d, last_check: { at: '2026-12-01T02:00:00Z', outcome: 'ok', shadow_fields: ['t'] } }
              : d,
          );
          return { device: devices[0], shadow: { t: 1 } };
        },
        copy_device_rest_header: () => 45,
        copy_device_mqtt_settings: () => 45,
      },
    });
    await start(b);
    const panel = $(tid('devices'));
    expect(panel.hidden).toBe(false);
    const rows = $$(tid('device-row'));
    expect(rows.map((r) => r.dataset.deviceId)).toEqual(['dev-1', 'dev-2']);
    expect($(tid('device-client-id'), rows[0]).textContent).toBe('abc-0001');
    expect($(tid('device-status'), rows[0]).textContent).toBe('Not checked yet.');
    expect($(tid('device-status'), rows[1]).textContent).toContain('rejected the device');

    $<HTMLButtonElement>(tid('device-check'), rows[0]).click();
    await settle();
    expect(b.callsTo('check_device')).toEqual([{ cmd: 'check_device', args: { id: 'dev-1' } }]);
    expect($(tid('device-status'), $$(tid('device-row'))[0]).textContent).toContain('Works');

    $<HTMLButtonElement>(tid('device-copy-rest'), $$(tid('device-row'))[0]).click();
    $<HTMLButtonElement>(tid('device-copy-mqtt'), $$(tid('device-row'))[0]).click();
    await settle();
    expect(b.callsTo('copy_device_rest_header')[0]?.args).toEqual({ id: 'dev-1' });
    expect(b.callsTo('copy_device_mqtt_settings')[0]?.args).toEqual({ id: 'dev-1' });
    expect(document.body.textContent).toContain('The clipboard is cleared in 45 s.');
  });

  it('adds a device: the token and secret are sent once and the form forgets them', async () => {
    const devices: Device[] = [];
    const b = fakeBackend({
      clients: [IOT, client()],
      handlers: {
        list_devices: () => devices,
        add_device: (a) => {
          const input = a.input as { name: string; device_id: string };
          devices.push(device({ name: input.name, device_id: input.device_id }));
          return devices[0];
        },
      },
    });
    await start(b);
    expect($(tid('devices-empty')).textContent).toBe('No devices yet.');
    const options = $$<HTMLOptionElement>('option', $(tid('device-client'))).map((o) => o.value);
    expect(options, 'only IoT clients').toEqual(['plant']);
    const set = (id: string, value: string) => {
      $<HTMLInputElement>(tid(id)).value = value;
    };
    set('device-name', 'pump-9');
    set('device-id', 'abc-0009');
    set('device-token', 'tok-canary');
    set('device-secret', 'sec-canary');
    $<HTMLFormElement>(tid('device-form')).requestSubmit();
    await settle();
    expect(b.callsTo('add_device')[0]?.args).toEqual({
      input: {
        name: 'pump-9',
        client: 'plant',
        connection: null,
        device_id: 'abc-0009',
        token: 'tok-canary',
        secret: 'sec-canary',
      },
    });
    expect($<HTMLInputElement>(tid('device-token')).value).toBe('');
    expect($<HTMLInputElement>(tid('device-secret')).value).toBe('');
    expect($$(tid('device-row'))).toHaveLength(1);
    expect(document.body.textContent).not.toContain('tok-canary');
  });

  it('shows an add error in plain words and follows devices_changed', async () => {
    let devices: Device[] = [];
    const b = fakeBackend({
      clients: [IOT],
      handlers: {
        list_devices: () => devices,
        add_device: () =>
          Promise.reject({ code: 'already_exists', message: 'A device named "x" exists already: pick another name.' }),
      },
    });
    await start(b);
    $<HTMLInputElement>(tid('device-name')).value = 'x';
    $<HTMLInputElement>(tid('device-id')).value = 'abc';
    $<HTMLInputElement>(tid('device-token')).value = 'tok';
    $<HTMLFormElement>(tid('device-form')).requestSubmit();
    await settle();
    expect($(tid('device-error')).hidden).toBe(false);
    expect($(tid('device-error')).textContent).toContain('exists already');
    devices = [device()];
    await b.changed({ kind: 'devices_changed' });
    await settle();
    expect($$(tid('device-row'))).toHaveLength(1);
  });

  it('stays hidden without an IoT client or device', async () => {
    await start(fakeBackend({ clients: [client()], handlers: { list_devices: () => [] } }));
    expect($(tid('devices')).hidden).toBe(true);
  });
});
