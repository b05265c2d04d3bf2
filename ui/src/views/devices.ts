// IoT devices, under the IoT accounts of the Connections view: each device's name,
// Client ID, client and last check, with Check, Copy as REST header, Copy as MQTT
// settings and Remove; and a form to add one. A device's Token and Secret go to the
// shell once (the add form) and never come back: the copy buttons have Rust write the
// clipboard (cleared again after 45 s), the list carries no secret.

import { api } from '../api';
import type { Client } from '../bindings/Client';
import type { CommandError } from '../bindings/CommandError';
import type { Device } from '../bindings/Device';
import { formatInstant, h, replaceChildren } from '../dom';
import { errorLine } from '../errors';
import { t } from '../i18n/index';
import { confirmDialog, toast } from './dialogs';
import { busy, errorSlot, field, input, secretInput, select, setOptions, showError } from './form';

export class DevicesPanel {
  readonly el: HTMLElement;
  private readonly rows: HTMLElement;
  private readonly form: HTMLFormElement;
  private readonly clientSelect: HTMLSelectElement;
  private readonly error: HTMLElement;
  private devices: Device[] = [];
  private iotClients: Client[] = [];

  constructor() {
    this.rows = h('ul', { class: 'device-list', 'data-testid': 'device-list' });
    this.error = errorSlot('device-error');
    const name = input({ 'data-testid': 'device-name', maxlength: 64, required: true });
    this.clientSelect = select({ 'data-testid': 'device-client' }, []);
    const deviceId = input({ 'data-testid': 'device-id', maxlength: 512, required: true });
    const token = secretInput('device-token');
    token.required = true;
    const secret = secretInput('device-secret');
    const submit = h(
      'button',
      { type: 'submit', class: 'btn btn-primary', 'data-testid': 'device-add' },
      t('devices.add'),
    );
    this.form = h(
      'form',
      { class: 'device-form', 'data-testid': 'device-form', 'aria-label': t('devices.form.label') },
      field(t('devices.field.name'), name),
      field(t('devices.field.client'), this.clientSelect),
      field(t('devices.field.deviceId'), deviceId, t('devices.field.deviceId.hint')),
      field(t('devices.field.token'), token),
      field(t('devices.field.secret'), secret, t('devices.field.secret.hint')),
      this.error,
      h('div', { class: 'inline-actions' }, submit),
    );
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      showError(this.error, null);
      void busy(submit, async () => {
        try {
          await api.addDevice({
            name: name.value,
            client: this.clientSelect.value,
            connection: null,
            device_id: deviceId.value,
            token: token.value,
            secret: secret.value === '' ? null : secret.value,
          });
          this.form.reset();
          toast(t('devices.added'));
          await this.reload();
        } catch (e) {
          showError(this.error, errorLine(e as CommandError));
        } finally {
          token.value = '';
          secret.value = '';
        }
      });
    });
    const heading = h('h2', { class: 'device-heading' }, t('devices.title'));
    this.el = h(
      'section',
      { class: 'devices', 'data-testid': 'devices', 'aria-label': t('devices.title') },
      heading,
      h('p', { class: 'hint' }, t('devices.intro')),
      this.rows,
      h('details', { class: 'device-add' }, h('summary', {}, t('devices.addTitle')), this.form),
    );
    this.el.hidden = true;
  }

  /** Load the devices and the IoT clients again (mount, `devices_changed`, `clients_changed`). */
  async reload(): Promise<void> {
    try {
      const [devices, clients] = await Promise.all([api.listDevices(), api.listClients()]);
      this.devices = devices;
      this.iotClients = clients.filter((c) => c.provider === 'iot');
    } catch {
      return; // the list stays as it was; the connections view reports a dead backend
    }
    this.render();
  }

  private render(): void {
    // Shown once there is an IoT client to keep devices under.
    this.el.hidden = this.iotClients.length === 0 && this.devices.length === 0;
    setOptions(
      this.clientSelect,
      this.iotClients.map((c) => [c.name, c.name] as const),
    );
    if (this.devices.length === 0) {
      replaceChildren(this.rows, h('li', { class: 'hint', 'data-testid': 'devices-empty' }, t('devices.empty')));
      return;
    }
    replaceChildren(this.rows, ...this.devices.map((d) => this.row(d)));
  }

  private row(d: Device): HTMLElement {
    const check = d.last_check;
    const status =
      check == null
        ? t('devices.neverChecked')
        : check.outcome === 'ok'
          ? t('devices.checkedOk', { at: formatInstant(check.at) })
          : t('devices.checkFailed', { at: formatInstant(check.at), error: check.message ?? check.outcome });
    const button = (testid: string, label: string, run: () => Promise<void>) => {
      const b = h('button', { type: 'button', class: 'btn btn-row', 'data-testid': testid }, label);
      b.addEventListener('click', () => void busy(b, run));
      return b;
    };
    const failed = (e: unknown) => toast(errorLine(e as CommandError), 'error');
    const copied = (seconds: number) => toast(t('devices.copied', { seconds }));
    return h(
      'li',
      { class: 'device-row', 'data-testid': 'device-row', 'data-device-id': d.id },
      h(
        'div',
        { class: 'device-main' },
        h('strong', {}, d.name),
        ' ',
        h('span', { class: 'device-client-id', 'data-testid': 'device-client-id' }, d.device_id),
        ' ',
        h('span', { class: 'hint' }, t('devices.under', { client: d.client_name })),
        d.sandbox ? h('span', { class: 'badge badge-sandbox' }, t('sandbox.badge')) : null,
      ),
      h(
        'p',
        {
          class: check != null && check.outcome !== 'ok' ? 'device-status error' : 'device-status',
          'data-testid': 'device-status',
        },
        status,
      ),
      h(
        'div',
        { class: 'inline-actions' },
        button('device-check', t('devices.check'), async () => {
          try {
            await api.checkDevice(d.id);
          } catch (e) {
            failed(e);
          }
          await this.reload();
        }),
        button('device-copy-rest', t('devices.copyRest'), async () => {
          try {
            copied(await api.copyDeviceRestHeader(d.id));
          } catch (e) {
            failed(e);
          }
        }),
        button('device-copy-mqtt', t('devices.copyMqtt'), async () => {
          try {
            copied(await api.copyDeviceMqttSettings(d.id));
          } catch (e) {
            failed(e);
          }
        }),
        button('device-remove', t('devices.remove'), async () => {
          const yes = await confirmDialog({
            title: t('devices.remove.title', { name: d.name }),
            message: t('devices.remove.text'),
            okLabel: t('devices.remove'),
            danger: true,
          });
          if (!yes) return;
          try {
            await api.removeDevice(d.id);
          } catch (e) {
            failed(e);
          }
          await this.reload();
        }),
      ),
    );
  }
}
