# The local single-user image: a debootstrap Debian base plus jupyterhub-singleuser and
# JupyterLab, so a first server opens in JupyterLab.
ARG BASE=fancy-env/bookworm-base:latest
FROM ${BASE}
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir "jupyterhub>=6,<7" "jupyter_server>=2" "jupyterlab>=4" \
 && useradd -m -u 1000 -s /bin/bash jovyan
USER 1000
WORKDIR /home/jovyan
CMD ["jupyterhub-singleuser"]
